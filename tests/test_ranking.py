"""Top-k outputs and ranking metrics (`labelwise.ranking`) against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import recall_score, top_k_accuracy_score

from labelwise.errors import ConfigError
from labelwise.ranking import (
    Ranked,
    dense_ranking_metrics,
    frequency_segments,
    output_top_k,
    rank,
    ranked_columns,
    ranking_metrics,
)
from labelwise.task import Task


def _multiclass(num_classes: int) -> Task:
    return Task(kind="multiclass", classes=tuple(range(num_classes)))


def test_rank_keeps_ties_in_class_order() -> None:
    probs = torch.tensor([[0.1, 0.3, 0.3, 0.3], [0.4, 0.1, 0.4, 0.1]])
    ranked = rank(probs, 3)
    assert ranked.classes.tolist() == [[1, 2, 3], [0, 2, 1]]
    torch.testing.assert_close(ranked.probs, torch.tensor([[0.3, 0.3, 0.3], [0.4, 0.4, 0.1]]))


@pytest.mark.parametrize("k", [0, 5, True, 2.0], ids=["zero", "above-classes", "bool", "float"])
def test_rank_refuses_a_k_outside_the_classes(k: object) -> None:
    with pytest.raises(
        ConfigError,
        match=rf"^--top-k {k!r} is not a number of classes to rank; expected a whole number from 1 to 4, the number "
        r"of classes\. Pass --top-k \(top_k=\) in that range\.$",
    ):
        rank(torch.full((2, 4), 0.25), k)  # type: ignore[arg-type]


def test_frequency_segments_split_the_training_rows_50_30_20() -> None:
    # 100 rows: class 3 alone holds the first 50%, class 0 the next 30%; 1 and 2 the rest; 4 was never seen.
    segments = frequency_segments(np.array([30, 12, 8, 50, 0]))
    assert {name: sorted(idx.tolist()) for name, idx in segments.items()} == {
        "head": [3],
        "torso": [0],
        "tail": [1, 2, 4],
    }


def test_single_label_metrics_match_sklearn() -> None:
    gen = torch.Generator().manual_seed(0)
    num_classes, n = 12, 400
    probs = torch.softmax(torch.randn(n, num_classes, generator=gen) * 2, dim=1)
    targets = torch.randint(0, num_classes, (n,), generator=gen)
    counts = np.array([200, 150, 100, 60, 40, 30, 20, 10, 5, 3, 1, 0])
    task = _multiclass(num_classes)
    metrics = ranking_metrics(rank(probs, 5), targets, task, train_counts=counts, ks=(1, 3, 5))
    y, scores = targets.numpy(), probs.numpy()
    labels = np.arange(num_classes)
    for k in (1, 3, 5):
        hit_rate = top_k_accuracy_score(y, scores, k=k, labels=labels)
        assert metrics[f"recall@{k}"] == pytest.approx(hit_rate, abs=1e-12)  # same count of hits over n
        assert metrics[f"precision@{k}"] == pytest.approx(hit_rate / k, abs=1e-12)
    top1 = scores.argmax(axis=1)
    for name, members in frequency_segments(counts).items():
        present = [c for c in members.tolist() if (y == c).any()]
        expected = recall_score(y, top1, labels=present, average="macro", zero_division=0)
        assert metrics[f"macro_recall@1/{name}"] == pytest.approx(expected, abs=1e-12)


def test_multilabel_metrics_by_hand() -> None:
    task = Task(kind="multilabel", classes=("a", "b", "c", "d"))
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    ranked = Ranked(classes=torch.tensor([[0, 2], [3, 2], [0, 1]]), probs=torch.tensor([[0.9, 0.5]] * 3))
    counts = np.array([10, 6, 2, 2])  # head a (first 50%), torso b (next 30%), tail c, d
    metrics = ranking_metrics(ranked, targets, task, train_counts=counts, ks=(1, 2))
    # Item 3 holds no label and is left out. Item 1: top1 a hit, top2 {a, c} 1 of 2 true; item 2: top1 d miss.
    assert metrics == pytest.approx(
        {
            "precision@1": (1 + 0) / 2,
            "recall@1": (1 / 2 + 0) / 2,
            "precision@2": (1 / 2 + 1 / 2) / 2,
            "recall@2": (1 / 2 + 1) / 2,
            "macro_recall@1/head": 1.0,  # a: its one item has a on top
            "macro_recall@1/torso": 0.0,  # b: never on top of its item
            "macro_recall@1/tail": 0.0,  # c present, missed; d absent from the targets
        }
    )


def test_metrics_refuse_cut_offs_beyond_the_ranking() -> None:
    ranked = rank(torch.full((2, 6), 1 / 6), 2)
    with pytest.raises(ConfigError, match=r"cut-offs \[5\] outside 1..2"):
        ranking_metrics(ranked, torch.tensor([0, 1]), _multiclass(6), train_counts=None)


def test_segments_need_one_count_per_class() -> None:
    ranked = rank(torch.full((2, 6), 1 / 6), 1)
    with pytest.raises(ConfigError, match=r"train_counts must be \(6,\), one per class"):
        ranking_metrics(ranked, torch.tensor([0, 1]), _multiclass(6), train_counts=np.ones(5), ks=(1,))


def test_ranked_columns_keep_the_label_types() -> None:
    task = Task(kind="multiclass", classes=(10, 20, 30))
    columns = ranked_columns(rank(torch.tensor([[0.2, 0.5, 0.3]]), 2), task)
    assert list(columns) == ["top1", "top2", "p_top1", "p_top2"]
    assert columns["top1"] == [20] and type(columns["top2"][0]) is int
    assert columns["p_top1"].tolist() == pytest.approx([0.5])


def test_small_runs_get_no_ranking_metrics_unless_they_give_top_k() -> None:
    probs, targets = torch.full((3, 4), 0.25), torch.tensor([0, 1, 2])
    assert dense_ranking_metrics(probs, targets, _multiclass(4), train_counts=None, top_k=None) == {}
    assert set(dense_ranking_metrics(probs, targets, _multiclass(4), train_counts=None, top_k=2)) == {
        "precision@1",
        "recall@1",
    }
    assert output_top_k(None, num_classes=256) is None and output_top_k(None, num_classes=257) == 5
