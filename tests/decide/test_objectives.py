"""labelwise.decide.objectives: threshold metric specs, and their scores from counts against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _references import reference_score
from labelwise.decide.objectives import THRESHOLD_METRICS, ThresholdMetric, parse_metric
from labelwise.errors import ConfigError

# The forms `--metric` documents; the parameter letters are placeholders.
DOCUMENTED = (
    "f1",
    "fbeta:B",
    "precision@recall:R",
    "recall@precision:P",
    "accuracy",
    "balanced_accuracy",
    "mcc",
    "youden",
)
# One concrete spec per form (two for fbeta: one favouring recall, one precision).
SPECS = (
    "f1",
    "fbeta:2",
    "fbeta:0.5",
    "precision@recall:0.6",
    "recall@precision:0.6",
    "accuracy",
    "balanced_accuracy",
    "mcc",
    "youden",
)


def _counts(targets: np.ndarray, decisions: np.ndarray) -> tuple[torch.Tensor, ...]:
    """tp, fp, fn, tn as float64 scalars, counted by hand."""
    t, d = targets.astype(bool), decisions.astype(bool)
    counts = ((t & d).sum(), (~t & d).sum(), (t & ~d).sum(), (~t & ~d).sum())
    return tuple(torch.tensor(float(c), dtype=torch.float64) for c in counts)


def test_the_documented_forms_are_offered() -> None:
    assert THRESHOLD_METRICS == DOCUMENTED


@settings(max_examples=40, deadline=None)
@given(
    spec=st.sampled_from(SPECS),
    rows=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=60),
)
def test_score_from_counts_matches_sklearn(spec: str, rows: list[tuple[bool, bool]]) -> None:
    # Both classes in the targets: with one, sklearn's ROC (youden) and MCC warn about an undefined value.
    pairs = np.array([(0, 0), (1, 1), *rows], dtype=int)
    targets, decisions = pairs[:, 0], pairs[:, 1]
    ours = float(parse_metric(spec).score(*_counts(targets, decisions)))
    # float64 ratios of small integer counts, computed in a different order: equal to ~1e-15.
    assert ours == pytest.approx(reference_score(spec, targets, decisions), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("f1", 0.0, id="f1"),  # sklearn zero_division=0: nothing flagged, nothing found
        pytest.param("fbeta:2", 0.0, id="fbeta"),
        pytest.param("recall@precision:0.5", -np.inf, id="recall@precision"),  # precision 0/0 = 0 < 0.5
        pytest.param("accuracy", 0.75, id="accuracy"),  # 3 of 4 right
        pytest.param("balanced_accuracy", 0.5, id="balanced_accuracy"),  # (0 + 1) / 2
        pytest.param("mcc", 0.0, id="mcc"),  # a zero denominator gives 0, as in sklearn
        pytest.param("youden", 0.0, id="youden"),  # TPR 0 + TNR 1 - 1
    ],
)
def test_nothing_flagged_scores_as_zero_division_0_says(spec: str, expected: float) -> None:
    targets, decisions = np.array([1, 0, 0, 0]), np.zeros(4, dtype=int)
    assert float(parse_metric(spec).score(*_counts(targets, decisions))) == expected


def test_balanced_accuracy_averages_the_classes_present_only() -> None:
    """One class in the targets: the mean of its recall alone, as sklearn (which warns here) computes it."""
    targets, decisions = np.array([1, 1, 1, 1]), np.array([1, 1, 0, 0])
    assert float(parse_metric("balanced_accuracy").score(*_counts(targets, decisions))) == 0.5  # 2 of 4 hit


def test_score_works_elementwise_on_a_vector_of_thresholds() -> None:
    """The tuner scores every candidate threshold at once: counts of shape (K,) give scores of shape (K,)."""
    rng = np.random.default_rng(0)
    targets, probs = rng.integers(0, 2, 50), rng.random(50)
    targets[:2] = [0, 1]
    cuts = np.array([0.2, 0.5, 0.8])
    columns = [_counts(targets, (probs >= cut).astype(int)) for cut in cuts]
    tp, fp, fn, tn = (torch.stack(parts) for parts in zip(*columns, strict=True))
    for spec in SPECS:
        scores = parse_metric(spec).score(tp, fp, fn, tn)
        expected = [reference_score(spec, targets, (probs >= cut).astype(int)) for cut in cuts]
        np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-12, atol=1e-12)  # float64 both, as above


@pytest.mark.parametrize(
    ("spec", "bounded", "param"),
    [
        pytest.param("precision@recall:0.8", skm.recall_score, 0.8, id="precision@recall"),
        pytest.param("recall@precision:0.8", skm.precision_score, 0.8, id="recall@precision"),
    ],
)
def test_a_constraint_is_compared_exactly(spec: str, bounded: object, param: float) -> None:
    metric = parse_metric(spec)
    # 8 of 10 positives flagged with 2 false alarms: recall and precision both exactly 0.8.
    targets = np.array([1] * 10 + [0] * 10)
    decisions = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 8)
    counts = _counts(targets, decisions)
    assert float(metric.constrained_measure(*counts)) == bounded(targets, decisions) == param  # type: ignore[operator]
    assert float(metric.score(*counts)) == 0.8  # the constraint holds at equality
    one_less = np.where(np.arange(20) == 7, 0, decisions)  # a hit fewer: recall 0.7, precision 7/9
    assert float(metric.score(*_counts(targets, one_less))) == -np.inf


@pytest.mark.parametrize(
    ("text", "normalised", "objective", "constraint"),
    [
        pytest.param(" FBeta:2.0 ", "fbeta:2", "fbeta:2", None, id="fbeta"),
        pytest.param("recall@precision:.95", "recall@precision:0.95", "recall", "precision >= 0.95", id="r@p"),
        pytest.param("Precision@Recall : 0.9", "precision@recall:0.9", "precision", "recall >= 0.9", id="p@r"),
        pytest.param("MCC", "mcc", "mcc", None, id="mcc"),
    ],
)
def test_specs_read_case_and_space_insensitively_and_print_back(
    text: str, normalised: str, objective: str, constraint: str | None
) -> None:
    metric = parse_metric(text)
    assert (str(metric), metric.objective, metric.constraint) == (normalised, objective, constraint)
    assert parse_metric(str(metric)) == metric
    assert parse_metric(metric) is metric


# -- errors ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("f3", r"'f3' cannot tune a decision threshold; expected one of f1, fbeta:B", id="unknown"),
        pytest.param("precision@recal:0.9", r"Did you mean 'precision@recall:0.9'\?", id="typo"),
        pytest.param("precision", r"maximised by flagging one item or all of them; use f1", id="precision-alone"),
        pytest.param("fbeta", r"has no B; expected `fbeta:B` with B > 0.*Use e.g. `fbeta:2`", id="no-param"),
        pytest.param("fbeta:x", r"has B='x', not a number; expected `fbeta:B`", id="not-a-number"),
        pytest.param("fbeta:0", r"has B=0, outside the range; expected `fbeta:B` with B > 0", id="fbeta-0"),
        pytest.param("fbeta:inf", r"has B=inf, outside the range", id="fbeta-inf"),
        pytest.param("precision@recall:1.5", r"R=1.5, outside the range; expected .*R in \(0, 1\]", id="R>1"),
        pytest.param("f1:2", r"f1 takes no parameter; expected `f1`\. Use `f1`", id="f1-param"),
        pytest.param(3, r"metric=3 is not a metric spec; expected a string.*Pass e.g. metric='f1'", id="int"),
    ],
)
def test_bad_specs_are_rejected(text: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_metric(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "param", "match"),
    [
        pytest.param("fbeta", None, r"'fbeta' has no B", id="missing"),
        pytest.param("f1", 2.0, r"f1 takes no parameter", id="extra"),
        pytest.param("fbeta", True, r"has B=True, not a number", id="bool"),
        pytest.param(
            "recall@precision",
            0.0,
            r"P=0, outside the range; expected `recall@precision:P` with P in \(0, 1\]",
            id="range",
        ),
        pytest.param("nope", None, r"'nope' cannot tune a decision threshold", id="unknown"),
    ],
)
def test_a_metric_built_directly_is_checked_too(name: str, param: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ThresholdMetric(name, param)  # type: ignore[arg-type]
