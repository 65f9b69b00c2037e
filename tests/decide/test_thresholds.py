"""labelwise.decide.thresholds: tuned thresholds against a brute-force scikit-learn search, and their rules."""

from __future__ import annotations

import contextlib
import json
import math
import warnings

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import labelwise.decide._scoring as scoring_module
from _factories import make_batch, make_task
from _references import reference_best_youden, reference_score
from labelwise.decide import (
    MIN_COUNT,
    THRESHOLD_METRICS,
    DecisionRule,
    ThresholdMetric,
    parse_metric,
    tune_thresholds,
)
from labelwise.errors import ConfigError, DataWarning
from labelwise.task import Task, TaskKind

# Every form of THRESHOLD_METRICS, its parameter drawn from the valid range (integers and round values too).
BETA = st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.floats(0.05, 20.0))
LEVEL = st.one_of(st.sampled_from([0.5, 0.8, 0.9, 1.0]), st.floats(0.01, 1.0))
METRIC = st.one_of(
    st.sampled_from([form for form in THRESHOLD_METRICS if ":" not in form]),
    st.builds(lambda b: f"fbeta:{b}", BETA),
    st.builds(lambda r: f"precision@recall:{r}", LEVEL),
    st.builds(lambda p: f"recall@precision:{p}", LEVEL),
)
# Probabilities with many ties and exact 0, 0.5 and 1, mixed with arbitrary ones.
PROBABILITY = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]), st.floats(0.0, 1.0, width=32))


def _both_columns(positive: torch.Tensor) -> torch.Tensor:
    return torch.stack([1 - positive, positive], dim=1)


def _candidates(p: np.ndarray) -> list[float]:
    """Every threshold that changes a decision, one at a time: midpoints, 0 (flag all) and 0.5."""
    values = np.unique(np.concatenate([[0.0, 1.0], p]))
    return [*((values[:-1] + values[1:]) / 2), 0.0, 0.5]


def _brute_force_best(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """Best sklearn score over every candidate threshold (-inf: no candidate meets the constraint)."""
    return max(reference_score(metric, y, (p >= t).astype(int)) for t in _candidates(p))


def _precision(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    return float(skm.precision_score(y, (p >= threshold).astype(int), zero_division=0))


def _reported(score: float) -> float | None:
    """What DecisionRule reports for a reference score: -inf (constraint missed) becomes None."""
    return None if score == -math.inf else pytest.approx(score, abs=1e-12)


def _binary_data(data: list[tuple[float, bool]]) -> tuple[np.ndarray, torch.Tensor]:
    y = np.array([label for _, label in data], dtype=int)
    if min(y.sum(), len(y) - y.sum()) < MIN_COUNT:
        y[: 2 * MIN_COUNT] = [0, 1] * MIN_COUNT  # enough of each class to tune
    return y, torch.tensor([p for p, _ in data], dtype=torch.float32)


@settings(max_examples=80, deadline=None)
@given(data=st.lists(st.tuples(PROBABILITY, st.booleans()), min_size=2 * MIN_COUNT, max_size=80), metric=METRIC)
def test_tuned_binary_threshold_is_best_and_beats_one_half(data: list[tuple[float, bool]], metric: str) -> None:
    y, positive = _binary_data(data)
    p = positive.double().numpy()
    best = _brute_force_best(metric, y, p)
    feasible = best > -math.inf
    assert feasible or metric.startswith("recall@precision")  # flagging everything has recall 1
    with contextlib.nullcontext() if feasible else pytest.warns(DataWarning, match="no threshold reaches precision"):
        rule = tune_thresholds(
            _both_columns(positive), torch.tensor(y, dtype=torch.float32), make_task("binary"), metric=metric
        )
    assert rule.threshold is not None and 0.0 <= rule.threshold <= 1.0
    tuned = reference_score(metric, y, rule.decide(_both_columns(positive)).numpy())
    at_half = reference_score(metric, y, (p >= 0.5).astype(int))
    assert rule.tuned_score == _reported(tuned)
    assert rule.default_score == _reported(at_half)
    if rule.kept_default:  # tuning lost to 0.5 out of bag: 0.5 is kept, whatever it scores here
        assert rule.threshold == 0.5 and rule.held_out_gain is not None and rule.held_out_gain <= 0.0
    elif feasible:
        assert tuned == pytest.approx(best, abs=1e-12)
        assert tuned >= at_half - 1e-12
        assert rule.threshold == 0.5 or tuned > at_half  # ties go to 0.5
    else:  # the fallback: the highest precision of any candidate
        best_precision = max(_precision(y, p, t) for t in _candidates(p))
        assert _precision(y, p, rule.threshold) == pytest.approx(best_precision, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.tuples(PROBABILITY, st.booleans()), min_size=2 * MIN_COUNT, max_size=80), level=LEVEL)
def test_constrained_thresholds_meet_their_target_on_the_tuning_data(
    data: list[tuple[float, bool]], level: float
) -> None:
    y, positive = _binary_data(data)
    task, targets = make_task("binary"), torch.tensor(y, dtype=torch.float32)
    rule = tune_thresholds(_both_columns(positive), targets, task, metric=f"precision@recall:{level}")
    assert skm.recall_score(y, rule.decide(_both_columns(positive)).numpy()) >= level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        rule = tune_thresholds(_both_columns(positive), targets, task, metric=f"recall@precision:{level}")
    met = skm.precision_score(y, rule.decide(_both_columns(positive)).numpy(), zero_division=0) >= level
    assert met == (not caught)  # a warning exactly when the target cannot be met


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.tuples(PROBABILITY, st.booleans()), min_size=2 * MIN_COUNT, max_size=80))
def test_youden_is_the_best_roc_point_and_picks_the_balanced_accuracy_threshold(data: list[tuple[float, bool]]) -> None:
    y, positive = _binary_data(data)
    probs, targets, task = _both_columns(positive), torch.tensor(y, dtype=torch.float32), make_task("binary")
    youden = tune_thresholds(probs, targets, task, metric="youden", held_out=False)
    assert youden.tuned_score == pytest.approx(reference_best_youden(y, positive.double().numpy()), abs=1e-12)
    balanced = tune_thresholds(probs, targets, task, metric="balanced_accuracy", held_out=False)
    assert youden.threshold == balanced.threshold


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(20, 150), metric=METRIC)
def test_multilabel_thresholds_beat_one_half(seed: int, n: int, metric: str) -> None:
    task, logits, targets = make_batch("multilabel", seed=seed, n=n)
    probs = task.probabilities(logits + 2 * targets - 1)  # informative, but not separable
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        rule = tune_thresholds(probs, targets, task, metric=metric, held_out=False)
    assert all("no threshold reaches precision" in str(w.message) for w in caught)
    assert rule.thresholds is not None and rule.shared_threshold is not None
    y, p, decided = targets.long().numpy(), probs.double().numpy(), rule.decide(probs).numpy()
    for j, label in enumerate(task.classes):
        if label in rule.shared_labels:
            assert rule.thresholds[j] == rule.shared_threshold
        else:
            assert min(y[:, j].sum(), n - y[:, j].sum()) >= MIN_COUNT
    # Shrinkage gives up the per-label optimum on purpose; the pooled guarantee stays (-inf: constraint missed).
    at_half = reference_score(metric, y.ravel(), (p.ravel() >= 0.5).astype(int))
    pooled = reference_score(metric, y.ravel(), (p.ravel() >= rule.shared_threshold).astype(int))
    assert pooled >= at_half - 1e-12
    assert reference_score(metric, y.ravel(), decided.ravel().astype(int)) >= pooled - 1e-12
    assert rule.tuned_score == _reported(reference_score(metric, y.ravel(), decided.ravel().astype(int)))


@pytest.mark.parametrize("metric", ["precision@recall:0.9", "recall@precision:0.8"])
def test_multilabel_constraints_hold_per_label_and_pooled(metric: str) -> None:
    task, logits, targets = make_batch("multilabel", n=300, seed=5)
    probs = task.probabilities(logits + 3 * targets - 1.5)
    rule = tune_thresholds(probs, targets, task, metric=metric, held_out=False)
    level = float(metric.split(":")[1])
    measure = skm.recall_score if metric.startswith("precision@recall") else skm.precision_score
    y = targets.long().numpy()
    for j in range(task.num_classes):  # each label's own threshold, before shrinkage, on that label
        own = _own_threshold(probs[:, j], targets[:, j], metric=metric)
        assert measure(y[:, j], (probs[:, j].double().numpy() >= own).astype(int)) >= level
    assert measure(y.ravel(), rule.decide(probs).numpy().ravel().astype(int)) >= level  # pooled, after shrinkage


@pytest.mark.parametrize("metric", ["f1", "fbeta:2", "youden", "precision@recall:0.9", "recall@precision:0.8"])
# Between them, both branches below for every metric but f1 (shrunk in both).
@pytest.mark.parametrize(("n", "seed"), [(1000, 0), (400, 3)], ids=["n1000", "n400"])
def test_own_thresholds_shrink_toward_the_shared_one(metric: str, n: int, seed: int) -> None:
    task, logits, targets = make_batch("multilabel", n=n, seed=seed)
    probs = task.probabilities(logits + 2 * targets - 1)
    rule = tune_thresholds(probs, targets, task, metric=metric, held_out=False)
    assert rule.thresholds is not None and rule.shared_threshold is not None
    shared, positives = rule.shared_threshold, targets.sum(dim=0)
    own = torch.tensor([_own_threshold(probs[:, j], targets[:, j], metric=metric) for j in range(task.num_classes)])
    shrunk = shared + (own.double() - shared) * positives / (positives + 100)
    y, p = targets.long().numpy().ravel(), probs.double().numpy()
    shrunk_score = reference_score(metric, y, (p >= shrunk.numpy()).astype(int).ravel())
    shared_score = reference_score(metric, y, (p >= shared).astype(int).ravel())
    if shrunk_score >= shared_score:
        # float32 probabilities pass through 1 - p in the binary view: agreement to float32 rounding.
        assert rule.thresholds == pytest.approx(shrunk.tolist(), abs=1e-6)
    else:  # shrunk thresholds that score below the shared one on the pooled data give way to it
        assert rule.thresholds == (shared,) * task.num_classes


def _own_threshold(probs: torch.Tensor, targets: torch.Tensor, *, metric: str = "f1") -> float:
    """The binary tuner on one label alone: the threshold before shrinkage."""
    rule = tune_thresholds(_both_columns(probs), targets, make_task("binary"), metric=metric, held_out=False)
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
    assert tune_thresholds(_both_columns(separable), targets, task, held_out=False).threshold == 0.5
    shifted = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.625, 0.875, 0.92, 0.94, 0.96, 0.98])
    assert tune_thresholds(_both_columns(shifted), targets, task, held_out=False).threshold == 0.75


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
    tuned = tune_thresholds(task.probabilities(logits), targets, task, held_out=False)
    assert tuned.describe().endswith(
        f"on 114 validation items with {int(targets.sum())} positives (f1 {tuned.tuned_score:.3f} vs "
        f"{tuned.default_score:.3f} at 0.5)"
    )
    checked = tune_thresholds(task.probabilities(logits), targets, task)
    assert checked.held_out_gain is not None
    if checked.kept_default:
        kept = f"left out (f1 {checked.held_out_gain:+.3f} on average)"
        assert checked.describe().endswith(kept)
    else:
        assert checked.describe().endswith(f"at 0.5; {checked.held_out_gain:+.3f} out of bag)")
    assert DecisionRule.default(task).describe() == "threshold 0.5 on P('malignant') (not tuned)"


def test_chunked_scoring_equals_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    task, logits, targets = make_batch("multilabel", n=100)
    probs = task.probabilities(logits + targets)
    whole = tune_thresholds(probs, targets, task)
    monkeypatch.setattr(scoring_module, "_CHUNK_ELEMENTS", 150)  # one label per chunk
    assert tune_thresholds(probs, targets, task) == whole


def test_many_items_are_scored_at_once() -> None:
    gen = torch.Generator().manual_seed(0)
    targets = (torch.rand(200_000, generator=gen) < 0.3).float()
    positive = torch.sigmoid(torch.randn(200_000, generator=gen) + 1.5 * targets)
    rule = tune_thresholds(_both_columns(positive), targets, make_task("binary"))
    assert rule.tuned_score is not None and rule.default_score is not None
    assert rule.tuned_score > rule.default_score


def test_flagging_everything_is_a_candidate_even_at_probability_zero() -> None:
    positive = torch.tensor([0.0, 0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 0.95])
    targets = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    rule = tune_thresholds(_both_columns(positive), targets, make_task("binary"), metric="precision@recall:1")
    assert rule.threshold == 0.0  # only flagging every item finds the positive at probability 0
    assert rule.decide(_both_columns(positive)).tolist() == [1] * 10
    assert rule.tuned_score == pytest.approx(0.5) and rule.default_score is None


# Dyadic probabilities, so the midpoint thresholds are exact. The most probable item is a negative: no
# threshold reaches precision 0.9; the best is 3/4, flagging the top four (cut (0.6875 + 0.625) / 2; 0.5
# flags five).
UNREACHABLE = (
    torch.tensor([0.9375, 0.875, 0.75, 0.6875, 0.625, 0.3125, 0.25, 0.125, 0.0625, 0.03125]),
    torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]),
)


def test_an_unreachable_precision_falls_back_to_the_highest_precision_with_a_warning() -> None:
    positive, targets = UNREACHABLE
    with pytest.warns(
        DataWarning,
        match=r"no threshold reaches precision >= 0.9 on the validation data, so `--metric recall@precision:0.9` "
        r"cannot be met \(best precision: 0.75\); the threshold with the highest precision is used instead. Lower "
        r"the target, e.g. `--metric recall@precision:0.75`, or use a larger validation split or a better model.",
    ):
        rule = tune_thresholds(_both_columns(positive), targets, make_task("binary"), metric="recall@precision:0.9")
    assert rule.threshold == 0.65625
    assert rule.tuned_score is None and rule.default_score is None  # the constraint fails at both
    assert DecisionRule.from_dict(json.loads(json.dumps(rule.to_dict(), allow_nan=False))) == rule
    assert rule.describe().endswith("(no threshold reached precision >= 0.9 on the validation data)")


def test_multilabel_fallback_names_the_labels_and_the_pooled_threshold() -> None:
    task, logits, targets = make_batch("multilabel", n=100, seed=1)
    probs = task.probabilities(logits + 3 * targets)
    probs[0], targets[0] = 1.0, 0.0  # a negative flagged at every threshold: precision 1 is out of reach
    with pytest.warns(
        DataWarning,
        match=r"\(best precision: 0.882 for all labels pooled, 0.857 for label 'cloud', 0.941 for label 'haze', "
        r"0.928 for label 'road', 0.875 for label 'water'\); .* e.g. `--metric recall@precision:0.85`",
    ):
        rule = tune_thresholds(probs, targets, task, metric="recall@precision:1")
    assert rule.tuned_score is None
    json.dumps(rule.to_dict(), allow_nan=False)


def test_describe_says_what_a_constrained_threshold_keeps() -> None:
    classes = ("benign", "malignant")
    common = {"kind": TaskKind.BINARY, "classes": classes, "threshold": 0.2, "num_samples": 114}
    rule = DecisionRule(metric="precision@recall:0.9", tuned_score=0.8125, default_score=0.75, **common)
    assert rule.describe().endswith("(precision 0.812 with recall >= 0.9, vs 0.750 at 0.5)")
    rule = DecisionRule(metric="precision@recall:0.9", tuned_score=0.8125, **common)
    assert rule.describe().endswith("(precision 0.812 with recall >= 0.9, vs 0.5 misses recall >= 0.9)")
    rule = DecisionRule(metric="fbeta:2", tuned_score=0.8125, default_score=0.75, **common)
    assert rule.describe().endswith("tuned for fbeta:2 on 114 validation items (fbeta:2 0.812 vs 0.750 at 0.5)")


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        (" F1 ", "f1"),
        ("fbeta:2.0", "fbeta:2"),
        ("FBeta: 0.50", "fbeta:0.5"),
        ("precision@recall:.9", "precision@recall:0.9"),
        ("recall@precision:1", "recall@precision:1"),
        ("youden", "youden"),
        ("balanced_accuracy", "balanced_accuracy"),
    ],
)
def test_specs_are_normalised_everywhere(text: str, spec: str) -> None:
    assert str(parse_metric(text)) == spec
    assert DecisionRule(kind=TaskKind.MULTICLASS, classes=("a", "b", "c"), metric=text).metric == spec
    task, logits, targets = make_batch("binary", n=64)
    assert tune_thresholds(task.probabilities(logits), targets, task, metric=text).metric == spec


@given(
    metric=st.one_of(
        st.builds(ThresholdMetric, st.just("fbeta"), st.floats(1e-9, 1e9)),
        st.builds(ThresholdMetric, st.sampled_from(["precision@recall", "recall@precision"]), st.floats(1e-9, 1.0)),
        st.builds(ThresholdMetric, st.sampled_from([f for f in THRESHOLD_METRICS if ":" not in f])),
    )
)
def test_specs_round_trip(metric: ThresholdMetric) -> None:
    assert parse_metric(str(metric)) == metric
    assert parse_metric(metric) is metric


def test_every_listed_form_parses() -> None:
    for form in THRESHOLD_METRICS:
        name, _, letter = form.partition(":")
        assert parse_metric(f"{name}:0.5" if letter else name) == ThresholdMetric(name, 0.5 if letter else None)


# -- errors ------------------------------------------------------------------------------------------
def test_too_few_items_of_a_class_keep_one_half() -> None:
    task = make_task("binary")
    probs = _both_columns(torch.linspace(0.05, 0.95, 12))
    targets = torch.tensor([0.0] * 9 + [1.0] * 3)
    with pytest.warns(DataWarning, match=r"3 positive and 9 negative .*at least 5 of each, so it stays 0.5.*larger"):
        rule = tune_thresholds(probs, targets, task)
    assert rule.threshold == 0.5


FORMS = r"expected one of f1, fbeta:B, precision@recall:R, recall@precision:P, accuracy, balanced_accuracy, mcc, youden"
BAD_SPECS = {
    "f_1": rf"metric='f_1' cannot tune a decision threshold; {FORMS} \(B > 0; R, P in \(0, 1\]\)\. Did you mean 'f1'\?",
    "fbta:2": r"metric='fbta:2' cannot tune .* Did you mean 'fbeta:2'\?",
    "precision@recal": r"cannot tune .* Did you mean 'precision@recall:R'\?",
    "precision": r"metric='precision' .*maximised by flagging one item or all of them; use f1, or keep one and "
    r"maximise the other with precision@recall:R or recall@precision:P",
    "roc": rf"metric='roc' cannot tune .*{FORMS}.*\. Use one of them with `--metric` \(`metric=` in Python\)\.",
    "fbeta": r"metric='fbeta' has no B; expected `fbeta:B` with B > 0 \(B > 1 favours recall, B < 1 precision\)\. "
    r"Use e\.g\. `fbeta:2` or `fbeta:0\.5`\.",
    "fbeta:": r"metric='fbeta:' has no B; expected `fbeta:B` with B > 0 .*Use e\.g\. `fbeta:2`",
    "fbeta:two": r"metric='fbeta:two' has B='two', not a number; expected `fbeta:B` with B > 0 .*Use e\.g\. `fbeta:2`",
    "fbeta:0": r"metric='fbeta:0' has B=0, outside the range; expected `fbeta:B` with B > 0 .*Use e\.g\. `fbeta:2`",
    "fbeta:-1": r"has B=-1, outside the range; expected `fbeta:B` with B > 0",
    "fbeta:inf": r"has B=inf, outside the range; expected `fbeta:B` with B > 0",
    "precision@recall:1.5": r"metric='precision@recall:1.5' has R=1.5, outside the range; expected "
    r"`precision@recall:R` with R in \(0, 1\], the recall to keep\. Use e\.g\. `precision@recall:0\.9`\.",
    "precision@recall:abc": r"has R='abc', not a number; expected `precision@recall:R` with R in \(0, 1\].*Use e\.g\.",
    "precision@recall:0": r"has R=0, outside the range; expected `precision@recall:R` with R in \(0, 1\]",
    "recall@precision": r"metric='recall@precision' has no P; expected `recall@precision:P` with P in \(0, 1\], the "
    r"precision to keep\. Use e\.g\. `recall@precision:0\.9`\.",
    "recall@precision:nan": r"has P=nan, outside the range; expected `recall@precision:P` with P in \(0, 1\]",
    "f1:2": r"metric='f1:2': f1 takes no parameter; expected `f1`\. Use `f1`\.",
}


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS.items(), ids=list(BAD_SPECS))
def test_bad_metric_specs_say_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_metric(spec)
    task, logits, targets = make_batch("binary")
    with pytest.raises(ConfigError, match=message):
        tune_thresholds(task.probabilities(logits), targets, task, metric=spec)


def test_bad_metric_values_outside_specs() -> None:
    with pytest.raises(ConfigError, match=r"metric=2 is not a metric spec; expected a string, one of f1, .*'f1'"):
        parse_metric(2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"metric='fbeta:-1.0' has B=-1, outside the range; expected `fbeta:B`"):
        ThresholdMetric("fbeta", -1.0)
    with pytest.raises(ConfigError, match=r"metric='fbeta' has no B; expected `fbeta:B`"):
        ThresholdMetric("fbeta")
    with pytest.raises(ConfigError, match=r"metric='mcc:0.5': mcc takes no parameter; expected `mcc`"):
        ThresholdMetric("mcc", 0.5)
    with pytest.raises(ConfigError, match=r"metric='f_1' cannot tune .*Did you mean 'f1'"):
        DecisionRule(kind=TaskKind.MULTICLASS, classes=("a", "b", "c"), metric="f_1")
    with pytest.raises(ConfigError, match=r"tuned_score=-inf; expected a finite number or None. Pass None where"):
        DecisionRule(kind=TaskKind.BINARY, classes=("a", "b"), threshold=0.5, tuned_score=-math.inf)
    task, logits, targets = make_batch("binary")
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


# -- the held-out rule: tuning must beat 0.5 on items it was not tuned on -----------------------------------------
def test_a_threshold_tuned_on_noise_is_not_kept() -> None:
    """Probabilities unrelated to the class: every threshold has balanced accuracy 0.5 on new items, so the best
    one on these items gains only by luck."""
    gen = torch.Generator().manual_seed(0)
    targets = (torch.rand(200, generator=gen) < 0.3).float()
    positive = torch.rand(200, generator=gen)
    task = make_task("binary")
    unchecked = tune_thresholds(_both_columns(positive), targets, task, metric="balanced_accuracy", held_out=False)
    assert unchecked.threshold != 0.5 and unchecked.tuned_score > unchecked.default_score + 0.02  # luck, here
    rule = tune_thresholds(_both_columns(positive), targets, task, metric="balanced_accuracy")
    assert rule.kept_default and rule.threshold == 0.5 and rule.held_out_gain is not None and rule.held_out_gain <= 0
    assert "0.5 kept" in rule.describe()


def test_a_threshold_that_helps_out_of_bag_is_kept() -> None:
    """Calibrated probabilities of a rare class: F1's best threshold is well below 0.5, on any items."""
    gen = torch.Generator().manual_seed(0)
    positive = torch.rand(2000, generator=gen) * 0.7
    targets = (torch.rand(2000, generator=gen) < positive).float()
    rule = tune_thresholds(_both_columns(positive), targets, make_task("binary"))
    assert not rule.kept_default and rule.threshold < 0.4 and rule.held_out_gain > 0.02
    task, rows = make_task("multilabel"), slice(0, 600)  # 4 labels: under ENOUGH positives pooled, so checked
    columns = [torch.roll(positive, k)[rows] for k in range(task.num_classes)]
    labels = tune_thresholds(
        torch.stack(columns, dim=1),
        torch.stack([torch.roll(targets, k)[rows] for k in range(task.num_classes)], dim=1),
        task,
    )  # fmt: skip
    assert not labels.kept_default and labels.held_out_gain > 0.02
    two = Task(kind=TaskKind.MULTILABEL, classes=("a", "b"))
    many = tune_thresholds(torch.stack([positive] * 2, dim=1), torch.stack([targets] * 2, dim=1), two)
    assert many.held_out_gain is None and not many.kept_default  # 1,400 positives pooled: not luck, not checked


def test_the_held_out_gain_survives_the_artifact() -> None:
    rule = DecisionRule(kind=TaskKind.BINARY, classes=("a", "b"), threshold=0.5, metric="f1", held_out_gain=-0.01,
                        kept_default=True)  # fmt: skip
    assert DecisionRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule
    assert DecisionRule.from_dict({k: v for k, v in rule.to_dict().items() if k not in ("held_out_gain",
                                   "kept_default")}).kept_default is False  # runs saved before the rule  # fmt: skip


def test_a_run_pulls_a_binary_threshold_toward_one_half_by_its_rarer_class() -> None:
    # 16 positives (the cross-fitted imbalanced cancer table's count): the tuned threshold moves 16/116 of the way.
    task = Task(kind="binary", classes=("no", "yes"))
    gen = torch.Generator().manual_seed(0)
    targets = torch.cat([torch.ones(16), torch.zeros(284)])
    p_yes = torch.cat([torch.rand(16, generator=gen) * 0.5 + 0.1, torch.rand(284, generator=gen) * 0.2])
    probs = torch.stack([1 - p_yes, p_yes], dim=1)
    best = tune_thresholds(probs, targets, task, held_out=False).threshold
    shrunk = tune_thresholds(probs, targets, task, held_out=False, shrink=True).threshold
    assert best is not None and shrunk is not None and best < 0.4
    assert shrunk == pytest.approx(0.5 + (best - 0.5) * 16 / (16 + 100))
    constrained = tune_thresholds(probs, targets, task, metric="precision@recall:0.9", held_out=False, shrink=True)
    assert constrained.threshold == tune_thresholds(probs, targets, task, metric="precision@recall:0.9",
                                                    held_out=False).threshold  # fmt: skip
