"""labelwise.decide.thresholds: tuned thresholds against a brute-force scikit-learn search, and their rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import labelwise.decide.thresholds as thresholds_module
from _factories import make_batch, make_task
from _references import reference_score
from labelwise.decide import MIN_COUNT, THRESHOLD_METRICS, DecisionRule, tune_thresholds
from labelwise.errors import ConfigError, DataWarning
from labelwise.task import TaskKind

METRICS = sorted(THRESHOLD_METRICS)
# Probabilities with many ties and exact 0, 0.5 and 1, mixed with arbitrary ones.
PROBABILITY = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]), st.floats(0.0, 1.0, width=32))


def _both_columns(positive: torch.Tensor) -> torch.Tensor:
    return torch.stack([1 - positive, positive], dim=1)


def _brute_force_best(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """Best sklearn score over every threshold that changes a decision, and 0.5, one at a time."""
    values = np.unique(np.concatenate([[0.0, 1.0], p]))
    candidates = [*((values[:-1] + values[1:]) / 2), 0.5]
    return max(reference_score(metric, y, (p >= t).astype(int)) for t in candidates)


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.tuples(PROBABILITY, st.booleans()), min_size=2 * MIN_COUNT, max_size=80),
    metric=st.sampled_from(METRICS),
)
def test_tuned_binary_threshold_is_best_and_beats_one_half(data: list[tuple[float, bool]], metric: str) -> None:
    y = np.array([label for _, label in data], dtype=int)
    if min(y.sum(), len(y) - y.sum()) < MIN_COUNT:
        y[: 2 * MIN_COUNT] = [0, 1] * MIN_COUNT  # enough of each class to tune
    positive = torch.tensor([p for p, _ in data], dtype=torch.float32)
    task = make_task("binary")
    rule = tune_thresholds(_both_columns(positive), torch.tensor(y, dtype=torch.float32), task, metric=metric)
    assert rule.threshold is not None and 0.0 <= rule.threshold <= 1.0
    p = positive.double().numpy()
    tuned = reference_score(metric, y, rule.decide(_both_columns(positive)).numpy())
    at_half = reference_score(metric, y, (p >= 0.5).astype(int))
    assert tuned == pytest.approx(rule.tuned_score, abs=1e-12)
    assert rule.default_score == pytest.approx(at_half, abs=1e-12)
    assert tuned == pytest.approx(_brute_force_best(metric, y, p), abs=1e-12)
    assert tuned >= at_half - 1e-12
    assert rule.threshold == 0.5 or tuned > at_half  # ties go to 0.5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(20, 150), metric=st.sampled_from(METRICS))
def test_multilabel_thresholds_beat_one_half(seed: int, n: int, metric: str) -> None:
    task, logits, targets = make_batch("multilabel", seed=seed, n=n)
    probs = task.probabilities(logits + 2 * targets - 1)  # informative, but not separable
    rule = tune_thresholds(probs, targets, task, metric=metric)
    assert rule.thresholds is not None and rule.shared_threshold is not None
    y, p, decided = targets.long().numpy(), probs.double().numpy(), rule.decide(probs).numpy()
    for j, label in enumerate(task.classes):
        if label in rule.shared_labels:
            assert rule.thresholds[j] == rule.shared_threshold
        else:
            assert min(y[:, j].sum(), n - y[:, j].sum()) >= MIN_COUNT
    # Shrinkage gives up the per-label optimum on purpose; the pooled guarantee stays.
    at_half = reference_score(metric, y.ravel(), (p.ravel() >= 0.5).astype(int))
    pooled = reference_score(metric, y.ravel(), (p.ravel() >= rule.shared_threshold).astype(int))
    assert pooled >= at_half - 1e-12
    assert reference_score(metric, y.ravel(), decided.ravel().astype(int)) >= pooled - 1e-12
    assert rule.tuned_score == pytest.approx(reference_score(metric, y.ravel(), decided.ravel().astype(int)))


def test_own_thresholds_shrink_toward_the_shared_one() -> None:
    task, logits, targets = make_batch("multilabel", n=400, seed=3)
    probs = task.probabilities(logits + 2 * targets - 1)
    rule = tune_thresholds(probs, targets, task)
    assert rule.thresholds is not None and rule.shared_threshold is not None
    positives = targets.sum(dim=0)
    for j in range(task.num_classes):
        own = _own_threshold(probs[:, j], targets[:, j])
        expected = rule.shared_threshold + (own - rule.shared_threshold) * positives[j] / (positives[j] + 100)
        # float32 probabilities pass through 1 - p in the binary view: agreement to float32 rounding.
        assert rule.thresholds[j] == pytest.approx(float(expected), abs=1e-6)


def _own_threshold(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """The binary tuner on one label alone: the threshold before shrinkage."""
    rule = tune_thresholds(_both_columns(probs), targets, make_task("binary"))
    assert rule.threshold is not None
    return rule.threshold


def test_rare_labels_use_the_shared_threshold() -> None:
    task, logits, targets = make_batch("multilabel", n=200)
    targets[:, 1] = 0.0
    targets[:3, 1] = 1.0  # 'haze': 3 positives, fewer than MIN_COUNT
    targets[:, 2] = 1.0
    targets[:4, 2] = 0.0  # 'road': 4 negatives
    probs = task.probabilities(logits + 2 * targets - 1)
    rule = tune_thresholds(probs, targets, task)
    assert rule.thresholds is not None
    assert rule.shared_labels == ("haze", "road")
    assert rule.thresholds[1] == rule.thresholds[2] == rule.shared_threshold
    assert "2 rare labels ('haze', 'road') use the shared" in rule.describe()
    everyone = tune_thresholds(probs, targets, task, min_count=0)
    assert everyone.shared_labels == ()


def test_ties_go_to_one_half_then_to_the_midpoint() -> None:
    task = make_task("binary")
    targets = torch.tensor([0.0] * 5 + [1.0] * 5)
    separable = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3, 0.9, 0.92, 0.94, 0.96, 0.98])
    assert tune_thresholds(_both_columns(separable), targets, task).threshold == 0.5
    shifted = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.625, 0.875, 0.92, 0.94, 0.96, 0.98])
    assert tune_thresholds(_both_columns(shifted), targets, task).threshold == 0.75


def test_thresholds_between_adjacent_float32_probabilities_decide_as_tuned() -> None:
    low = torch.tensor(0.3, dtype=torch.float32)
    high = torch.nextafter(low, torch.tensor(1.0))  # the next float32: no float32 lies between them
    positive = torch.cat([low.repeat(5), high.repeat(5)])
    targets = torch.tensor([0.0] * 5 + [1.0] * 5)
    rule = tune_thresholds(_both_columns(positive), targets, make_task("binary"))
    assert rule.threshold is not None and low.item() < rule.threshold < high.item()
    assert torch.equal(rule.decide(_both_columns(positive)), targets.long())


def test_probability_equal_to_the_threshold_is_positive() -> None:
    rule = DecisionRule(kind=TaskKind.MULTILABEL, classes=("a", "b"), thresholds=(0.5, 0.25))
    assert rule.decide(torch.tensor([[0.5, 0.25], [0.49, 0.24]])).tolist() == [[True, True], [False, False]]


def test_multiclass_decides_by_argmax() -> None:
    task, logits, targets = make_batch("multiclass")
    probs = task.probabilities(logits)
    rule = tune_thresholds(probs, targets, task, metric="accuracy")
    assert rule.threshold is None and rule.thresholds is None and rule.metric == "accuracy"
    assert torch.equal(rule.decide(probs), probs.argmax(dim=1))
    assert rule.describe() == "argmax over 4 classes"


def test_decisions_have_the_task_convention(kind: TaskKind) -> None:
    task, logits, targets = make_batch(kind)
    probs = task.probabilities(logits)
    decisions = tune_thresholds(probs, targets, task).decide(probs)
    assert decisions.dtype == (torch.bool if kind is TaskKind.MULTILABEL else torch.long)
    assert decisions.shape == targets.shape


def test_default_rule_is_one_half_or_argmax(kind: TaskKind) -> None:
    task, logits, _ = make_batch(kind)
    probs = task.probabilities(logits)
    decisions = DecisionRule.default(task).decide(probs)
    expected = {
        TaskKind.BINARY: (probs[:, 1] >= 0.5).long(),
        TaskKind.MULTICLASS: probs.argmax(dim=1),
        TaskKind.MULTILABEL: probs >= 0.5,
    }[kind]
    assert torch.equal(decisions, expected)


def test_json_round_trip(kind: TaskKind) -> None:
    task, logits, targets = make_batch(kind)
    rule = tune_thresholds(task.probabilities(logits), targets, task)
    assert DecisionRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule


def test_describe_says_what_was_tuned_on_what() -> None:
    classes = ("benign", "malignant")
    rule = DecisionRule(kind=TaskKind.BINARY, classes=classes, threshold=0.37, metric="f1", num_samples=114)
    assert rule.describe() == "threshold 0.37 on P('malignant'), tuned for f1 on 114 validation items"
    task, logits, targets = make_batch("binary", n=114)
    tuned = tune_thresholds(task.probabilities(logits), targets, task)
    assert tuned.describe().endswith(
        f"on 114 validation items (f1 {tuned.tuned_score:.3f} vs {tuned.default_score:.3f} at 0.5)"
    )
    assert DecisionRule.default(task).describe() == "threshold 0.5 on P('malignant') (not tuned)"


def test_chunked_scoring_equals_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    task, logits, targets = make_batch("multilabel", n=100)
    probs = task.probabilities(logits + targets)
    whole = tune_thresholds(probs, targets, task)
    monkeypatch.setattr(thresholds_module, "_CHUNK_ELEMENTS", 150)  # one label per chunk
    assert tune_thresholds(probs, targets, task) == whole


def test_many_items_are_scored_at_once() -> None:
    gen = torch.Generator().manual_seed(0)
    targets = (torch.rand(200_000, generator=gen) < 0.3).float()
    positive = torch.sigmoid(torch.randn(200_000, generator=gen) + 1.5 * targets)
    rule = tune_thresholds(_both_columns(positive), targets, make_task("binary"))
    assert rule.tuned_score is not None and rule.default_score is not None
    assert rule.tuned_score > rule.default_score


# -- errors ------------------------------------------------------------------------------------------
def test_too_few_items_of_a_class_keep_one_half() -> None:
    task = make_task("binary")
    probs = _both_columns(torch.linspace(0.05, 0.95, 12))
    targets = torch.tensor([0.0] * 9 + [1.0] * 3)
    with pytest.warns(DataWarning, match=r"3 positive and 9 negative .*at least 5 of each, so it stays 0.5.*larger"):
        rule = tune_thresholds(probs, targets, task)
    assert rule.threshold == 0.5


def test_unknown_metric_suggests_the_closest() -> None:
    task, logits, targets = make_batch("binary")
    with pytest.raises(ConfigError, match=r"metric='f_1' cannot tune .*expected one of accuracy, .* Did you mean 'f1'"):
        tune_thresholds(task.probabilities(logits), targets, task, metric="f_1")
    with pytest.raises(ConfigError, match=r"metric='precision' .*maximised by flagging one item or all .*use f1"):
        tune_thresholds(task.probabilities(logits), targets, task, metric="precision")
    with pytest.raises(ConfigError, match=r"min_count=-1; expected an integer >= 0"):
        tune_thresholds(task.probabilities(logits), targets, task, min_count=-1)


def test_logits_are_not_probabilities(kind: TaskKind) -> None:
    task, logits, targets = make_batch(kind)
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\].*pass `task.probabilities\(logits\)`"):
        DecisionRule.default(task).decide(logits.expand(-1, task.num_classes).contiguous())


def test_inconsistent_rules_are_rejected() -> None:
    classes = ("benign", "malignant")
    with pytest.raises(ConfigError, match=r"binary DecisionRule takes `threshold`, got none. Use `DecisionRule.def"):
        DecisionRule(kind=TaskKind.BINARY, classes=classes)
    with pytest.raises(ConfigError, match=r"multiclass DecisionRule takes no threshold \(argmax\), got `threshold`"):
        DecisionRule(kind=TaskKind.MULTICLASS, classes=("a", "b", "c"), threshold=0.5)
    with pytest.raises(ConfigError, match=r"3 thresholds for 2 labels; expected one per label"):
        DecisionRule(kind=TaskKind.MULTILABEL, classes=classes, thresholds=(0.5, 0.5, 0.5))
    with pytest.raises(ConfigError, match=r"numbers in \[0, 1\], got threshold='high'.*DecisionRule.default"):
        DecisionRule(kind=TaskKind.BINARY, classes=classes, threshold="high")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"thresholds must lie in \[0, 1\], got 1.5"):
        DecisionRule(kind=TaskKind.BINARY, classes=classes, threshold=1.5)
    with pytest.raises(ConfigError, match=r"kind='regression'; expected binary, multiclass or multilabel"):
        DecisionRule(kind="regression", classes=classes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"unknown DecisionRule fields 'treshold' \(did you mean 'threshold'\?\)"):
        DecisionRule.from_dict({"kind": "binary", "classes": list(classes), "treshold": 0.3})
