"""`build_loss`: which loss a head trains with, what it records, and the refusals before training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from _references import reference_loss
from labelwise.decide import DecideConfig
from labelwise.errors import ConfigError
from labelwise.losses import Balance
from labelwise.task import Task
from labelwise.train import TrainConfig
from labelwise.train.head_loss import HeadLoss, build_loss

NO_WEIGHTS = Balance(None, None, "no loss weights.")


def _task(num_classes: int, kind: str = "multiclass") -> Task:
    return Task(kind=kind, classes=tuple(f"c{i}" for i in range(num_classes)))


def _targets(task: Task, rows: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if task.kind == "multilabel":
        return (torch.rand(rows, task.num_classes, generator=generator) > 0.7).float()
    return torch.randint(0, task.num_classes, (rows,), generator=generator)


@pytest.mark.parametrize(
    ("loss", "expected_outputs"),
    [("auto", "logits"), ("full", "logits"), ("chunked", "ranked"), ("sampled", "ranked")],
)
def test_the_record_says_which_loss_and_whether_the_head_ranks(loss: str, expected_outputs: str) -> None:
    task = _task(40)
    module, record = build_loss(
        task,
        config=TrainConfig(loss=loss, num_sampled=8),
        balance=NO_WEIGHTS,
        num_features=16,
        train_targets=_targets(task),
    )
    assert record["loss"] == ("full" if loss == "auto" else loss)
    assert record["outputs"] == expected_outputs
    assert record["reason"] and record["balance"] == "no loss weights."
    assert isinstance(module, HeadLoss) == (expected_outputs == "ranked")


def test_a_sampled_multilabel_head_still_gives_every_logit() -> None:
    task = _task(40, "multilabel")
    _, record = build_loss(
        task,
        config=TrainConfig(loss="sampled", num_sampled=8),
        balance=NO_WEIGHTS,
        num_features=16,
        train_targets=_targets(task),
    )
    assert record["outputs"] == "logits"


def test_the_full_loss_is_the_tasks_loss_against_torch() -> None:
    task = _task(5)
    module, _ = build_loss(task, config=TrainConfig(), balance=NO_WEIGHTS, num_features=8, train_targets=_targets(task))
    logits, targets = torch.randn(32, 5, generator=torch.Generator().manual_seed(1)), _targets(task)
    torch.testing.assert_close(module(logits, targets), reference_loss("multiclass", logits, targets))


def test_chunked_validation_equals_the_full_cross_entropy() -> None:
    task = _task(40)
    module, _ = build_loss(
        task, config=TrainConfig(loss="chunked"), balance=NO_WEIGHTS, num_features=8, train_targets=_targets(task)
    )
    head, features, targets = nn.Linear(8, 40), torch.randn(32, 8), _targets(task)
    full = nn.functional.cross_entropy(head(features), targets)
    torch.testing.assert_close(module(features, head, targets, train=False), full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_chunked_validation_in_row_blocks_is_the_weighted_cross_entropy(
    monkeypatch: pytest.MonkeyPatch, smoothing: float
) -> None:
    import labelwise.train.head_loss

    monkeypatch.setattr(labelwise.train.head_loss, "ROW_BLOCK", 5)  # 32 rows: 7 blocks, the last of 2
    task, g = _task(40), torch.Generator().manual_seed(3)
    class_weight = torch.rand(40, generator=g) + 0.5
    module = HeadLoss(task, method="chunked", class_weight=class_weight, label_smoothing=smoothing)
    head, features, targets = nn.Linear(8, 40), torch.randn(32, 8, generator=g), _targets(task)
    full = nn.functional.cross_entropy(head(features), targets, weight=class_weight, label_smoothing=smoothing)
    torch.testing.assert_close(module(features, head, targets, train=False), full, rtol=1e-5, atol=1e-6)


def test_sampled_weights_are_dropped_and_the_record_says_so() -> None:
    task = _task(40)
    balance = Balance(None, torch.ones(40), "class weights.")
    _, record = build_loss(
        task,
        config=TrainConfig(loss="sampled", num_sampled=8),
        balance=balance,
        num_features=8,
        train_targets=_targets(task),
    )
    assert "--loss sampled trains without them" in record["balance"]


@pytest.mark.parametrize(
    ("task", "config", "decide", "message"),
    [
        (_task(2, "binary"), TrainConfig(loss="chunked"), None, "--loss chunked needs a head with one logit per class"),
        (
            _task(40, "multilabel"),
            TrainConfig(loss="chunked"),
            None,
            "exact softmax cross-entropy for single-label tasks",
        ),
        (_task(40), TrainConfig(loss="chunked"), DecideConfig(conformal=0.9), "--conformal needs every class"),
        (_task(40), TrainConfig(loss="sampled", num_sampled=8), DecideConfig(top_k=3), "Drop --top-k here"),
    ],
)
def test_losses_and_decisions_a_head_cannot_give_are_refused(
    task: Task, config: TrainConfig, decide: DecideConfig | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_loss(task, config=config, balance=NO_WEIGHTS, num_features=8, train_targets=_targets(task), decide=decide)
