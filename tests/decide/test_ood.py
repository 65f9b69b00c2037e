"""labelwise.decide.ood: unknown scores per head against their papers' formulas (pytorch-ood for softmax heads),
detector metrics against pytorch-ood and scikit-learn, and the risk-coverage summaries."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _factories import make_task
from _references import reference_aurc, reference_ood_metrics, reference_unknown_scores, sklearn_ood_metrics
from labelwise.decide.ood import UNKNOWN_SCORES, aurc, check_score, ood_metrics, risk_coverage, unknown_scores
from labelwise.errors import ConfigError, DataError
from labelwise.task import Task, TaskKind

# Every single-label head: (kind, Task options, which formulas apply).
HEADS = {
    "binary-one-logit": (TaskKind.BINARY, {}, "one_logit"),
    "binary-two-logits": (TaskKind.BINARY, {"head": "two_logits"}, "softmax"),
    "multiclass": (TaskKind.MULTICLASS, {}, "softmax"),
    "binary-one-vs-rest": (TaskKind.BINARY, {"head": "one_vs_rest"}, "one_vs_rest"),
    "multiclass-one-vs-rest": (TaskKind.MULTICLASS, {"head": "one_vs_rest"}, "one_vs_rest"),
}
SUPPORTED = [
    pytest.param(head, score, id=f"{head}-{score}")
    for head in HEADS
    for score in UNKNOWN_SCORES
    if (head, score) != ("binary-one-logit", "energy")
]
# Scores with many ties (a handful of values) mixed with arbitrary ones.
SCORE = st.one_of(st.sampled_from([-2.0, 0.0, 0.25, 0.5, 1.0]), st.floats(-50.0, 50.0, allow_subnormal=False))


def _head_batch(head: str, *, seed: int = 0, n: int = 64) -> tuple[Task, torch.Tensor]:
    kind, options, _ = HEADS[head]
    task = replace(make_task(kind), **options)
    logits = torch.randn(n, task.head_width, generator=torch.Generator().manual_seed(seed)) * 3
    return task, logits


# -- scores ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("head", "score"), SUPPORTED)
def test_unknown_scores_match_reference(head: str, score: str) -> None:
    task, logits = _head_batch(head)
    scores = unknown_scores(logits, task, score=score)
    assert scores.dtype == torch.float64 and scores.shape == (len(logits),)
    # Both float64 from the same logits; ours keeps 1 - p in a cancellation-free form, so they differ by rounding.
    torch.testing.assert_close(scores, reference_unknown_scores(HEADS[head][2], score, logits), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("head", "score"), SUPPORTED)
def test_confident_items_keep_distinct_scores(head: str, score: str) -> None:
    # 1 - max softmax in float64 is 0 for both rows; the scores must still rank the more confident one lower.
    task, _ = _head_batch(head)
    logits = torch.full((2, task.head_width), -5.0)
    logits[:, 0] = torch.tensor([40.0, 45.0])
    scores = unknown_scores(logits, task, score=score)
    assert scores[1] < scores[0]


@pytest.mark.parametrize("check", [unknown_scores, check_score], ids=["unknown_scores", "check_score"])
@pytest.mark.parametrize(
    ("kind", "options", "score", "match"),
    [
        pytest.param(
            "multilabel", {}, "max_prob", r"already answers none when no label passes.*Drop `--allow-none`", id="ml"
        ),
        pytest.param(
            "binary", {}, "energy", r"one logit.*`--binary-head two`.*`--allow-none max_prob`", id="one-logit-energy"
        ),
        pytest.param(
            "multiclass", {}, "enrgy", r"expected one of max_prob, energy\. Did you mean 'energy'\?", id="typo"
        ),
    ],
)
def test_unsupported_scores_raise(check: object, kind: str, options: dict[str, str], score: str, match: str) -> None:
    task = replace(make_task(kind), **options)
    with pytest.raises(ConfigError, match=match):
        if check is unknown_scores:
            unknown_scores(torch.zeros(3, task.head_width), task, score=score)
        else:
            check_score(task, score=score)


@pytest.mark.parametrize(
    ("logits", "error", "match"),
    [
        pytest.param(torch.zeros(2, 3), ConfigError, r"\(2, 3\).*expected \(N, 4\)", id="width"),
        pytest.param(torch.zeros(2, 4, dtype=torch.long), ConfigError, r"float tensor, got torch\.int64", id="dtype"),
        pytest.param(
            torch.tensor([[0.0] * 4, [float("nan")] + [0.0] * 3]),
            DataError,
            r"row 1 are not finite.*expected finite values\. Check those rows' inputs",
            id="nan",
        ),
    ],
)
def test_bad_logits_raise(logits: torch.Tensor, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        unknown_scores(logits, make_task("multiclass"), score="energy")


# -- detector metrics --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.tuples(SCORE, st.booleans()), min_size=2, max_size=60))
def test_ood_metrics_match_pytorch_ood_and_sklearn(data: list[tuple[float, bool]]) -> None:
    scores = torch.tensor([s for s, _ in data], dtype=torch.float64)
    is_unknown = torch.tensor([u for _, u in data])
    metrics = ood_metrics(scores, is_unknown)
    if is_unknown.all() or not is_unknown.any():
        assert metrics == {}  # undefined metrics are left out, never NaN
        return
    for reference in (
        reference_ood_metrics(scores, is_unknown),
        sklearn_ood_metrics(scores.numpy(), is_unknown.numpy()),
    ):
        assert metrics.keys() == reference.keys()
        # torchmetrics' AUROC counts in float32; the FPR is a ratio of exact counts at the same cut.
        assert metrics["unknown_auroc"] == pytest.approx(reference["unknown_auroc"], abs=1e-6)
        assert metrics["unknown_fpr95"] == reference["unknown_fpr95"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ood_metrics_match_references_on_overlapping_scores(seed: int) -> None:
    # 400 known and 100 unknown items whose scores overlap, rounded to 0.05 so that ties cross the 95% cut:
    # every cut between consecutive distinct scores moves the FPR here (the small lists above rarely show it).
    gen = torch.Generator().manual_seed(seed)
    is_unknown = torch.arange(500) >= 400
    scores = ((torch.randn(500, generator=gen, dtype=torch.float64) + is_unknown.double()) * 20).round() / 20
    metrics = ood_metrics(scores, is_unknown)
    for reference in (
        reference_ood_metrics(scores, is_unknown),
        sklearn_ood_metrics(scores.numpy(), is_unknown.numpy()),
    ):
        assert metrics["unknown_auroc"] == pytest.approx(reference["unknown_auroc"], abs=1e-6)  # float32 counts
        assert metrics["unknown_fpr95"] == reference["unknown_fpr95"]


def test_ood_metrics_hand_checked() -> None:
    # 20 known items scoring 1..20 and unknown ones at 0.5, 18.5, 19.5 and 25. 95% of the known items is 19 of
    # them: the cut is score 19, accepting the unknown ones at 0.5 and 18.5 (FPR 2/4). Unknown over known pairs:
    # 0 + 18 + 19 + 20 = 57 of 80.
    scores = torch.cat([torch.arange(1, 21, dtype=torch.float64), torch.tensor([0.5, 18.5, 19.5, 25.0])])
    is_unknown = torch.arange(24) >= 20
    metrics = ood_metrics(scores, is_unknown)
    assert metrics == {"unknown_auroc": pytest.approx(57 / 80), "unknown_fpr95": 0.5}


def test_ood_metrics_energy_scale_keeps_order() -> None:
    # Energies far outside [0, 1]: a sigmoid inside torchmetrics would map 40 and 50 to the same 1.0.
    scores = torch.tensor([40.0, 50.0, 60.0], dtype=torch.float64)
    assert ood_metrics(scores, torch.tensor([False, True, True]))["unknown_auroc"] == 1.0


@pytest.mark.parametrize(
    ("scores", "flags", "error", "match"),
    [
        pytest.param(torch.zeros(3, 1), torch.zeros(3, dtype=torch.bool), ConfigError, r"\(N,\) float", id="2d"),
        pytest.param(torch.tensor([0.0, float("nan")]), torch.tensor([True, False]), DataError, "row 1", id="nan"),
        pytest.param(torch.zeros(3), torch.zeros(2, dtype=torch.bool), ConfigError, r"expected \(3,\) bool", id="len"),
        pytest.param(torch.zeros(2), torch.tensor([0, 2]), ConfigError, r"bool \(or 0/1\).*row 1 hold 2", id="values"),
    ],
)
def test_ood_metrics_bad_inputs_raise(
    scores: torch.Tensor, flags: torch.Tensor, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ood_metrics(scores, flags)


# -- risk-coverage -----------------------------------------------------------------------------------
def test_risk_coverage_hand_checked() -> None:
    # Ten items scoring 1..10; the 5th, 8th and 10th lowest are wrong.
    scores = torch.arange(1, 11, dtype=torch.float64)
    correct = torch.tensor([1, 1, 1, 1, 0, 1, 1, 0, 1, 0]).bool()
    rows = risk_coverage(scores, correct, coverages=(1.0, 0.7, 0.25))
    assert rows == [
        {"target_coverage": 1.0, "coverage": 1.0, "threshold": 10.0, "selective_accuracy": 0.7, "num_accepted": 10},
        {"target_coverage": 0.7, "coverage": 0.7, "threshold": 7.0, "selective_accuracy": 6 / 7, "num_accepted": 7},
        # 0.25 of 10 is 2.5 items: the smallest threshold that reaches it accepts 3
        {"target_coverage": 0.25, "coverage": 0.3, "threshold": 3.0, "selective_accuracy": 1.0, "num_accepted": 3},
    ]


def test_risk_coverage_accepts_ties_together() -> None:
    rows = risk_coverage(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([True, False, True, True]), coverages=(0.5,))
    assert rows == [
        {"target_coverage": 0.5, "coverage": 0.75, "threshold": 0.0, "selective_accuracy": 2 / 3, "num_accepted": 3}
    ]


@pytest.mark.parametrize(
    ("coverages", "match"),
    [
        pytest.param((0.9, 1.5), r"holds 1\.5; expected fractions in \(0, 1\]", id="above-1"),
        pytest.param((0.0,), r"holds 0\.0; expected fractions in \(0, 1\]", id="zero"),
        pytest.param((), r"holds nothing; expected fractions", id="empty"),
    ],
)
def test_risk_coverage_bad_coverages_raise(coverages: tuple[float, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        risk_coverage(torch.zeros(3), torch.ones(3, dtype=torch.bool), coverages=coverages)


@pytest.mark.parametrize("summary", [risk_coverage, aurc], ids=["risk_coverage", "aurc"])
def test_no_items_raise(summary: object) -> None:
    with pytest.raises(DataError, match=r"0 scores\); expected at least one validation item.*Give a validation split"):
        summary(torch.zeros(0), torch.zeros(0, dtype=torch.bool))  # type: ignore[operator]


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.floats(-50.0, 50.0), st.booleans()), min_size=1, max_size=60, unique_by=lambda t: t[0])
)
def test_aurc_matches_pytorch_ood_aurra(data: list[tuple[float, bool]]) -> None:
    scores = torch.tensor([s for s, _ in data], dtype=torch.float64)
    correct = torch.tensor([c for _, c in data])
    # Both are means of running error (accuracy) rates in float64; only the summation order differs.
    assert aurc(scores, correct) == pytest.approx(reference_aurc(scores, correct), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0]), st.booleans()), min_size=1, max_size=6))
def test_aurc_with_ties_is_the_mean_over_tie_orders(data: list[tuple[float, bool]]) -> None:
    scores = np.array([s for s, _ in data])
    errors = np.array([not c for _, c in data], dtype=float)
    k = np.arange(1, len(data) + 1)
    # Every order that sorts the scores (ties in any order), each equally likely.
    orders = [p for p in itertools.permutations(range(len(data))) if np.all(np.diff(scores[list(p)]) >= 0)]
    expected = np.mean([np.mean(np.cumsum(errors[list(p)]) / k) for p in orders])
    got = aurc(torch.tensor(scores), torch.tensor([c for _, c in data]))
    assert got == pytest.approx(expected, abs=1e-12)
