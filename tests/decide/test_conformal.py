"""labelwise.decide.conformal: hand-checked sets, crepes as the reference quantile, coverage on calibrated data."""

from __future__ import annotations

import json
import math
import struct
from fractions import Fraction

import numpy as np
import pytest
import torch
from crepes import ConformalClassifier

import labelwise.decide._conformal_scores as scores_module
from _factories import make_task
from labelwise.decide.conformal import (
    RAPS_PENALTY,
    ConformalSets,
    fit_conformal,
    min_calibration_size,
    set_metrics,
)
from labelwise.errors import ConfigError, DataError, DataWarning, LabelError
from labelwise.task import Task, TaskKind

LEVELS = [0.8, 0.9, 0.95]
# (kind, method): every method on every kind that can use it.
METHODS = [
    pytest.param("binary", "aps", id="binary-aps"),
    pytest.param("multiclass", "aps", id="multiclass-aps"),
    pytest.param("multiclass", "raps", id="multiclass-raps"),
    pytest.param("multiclass", "threshold", id="multiclass-threshold"),
    pytest.param("multilabel", "threshold", id="multilabel-threshold"),
]
_U64 = (1 << 64) - 1


# -- independent references --------------------------------------------------------------------------
def _reference_splitmix64(x: int) -> int:
    """splitmix64's output function on Python ints (Steele, Lea & Flood 2014)."""
    z = (x + 0x9E3779B97F4A7C15) & _U64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return z ^ (z >> 31)


def _reference_uniform(row: list[float]) -> float:
    """The module docstring's ``u``, with struct for the float32 bits and Python ints for the arithmetic."""
    total = 0
    for column, p in enumerate(row):
        bits = struct.unpack("<I", struct.pack("<f", p + 0.0))[0]
        total = (total + _reference_splitmix64(bits ^ _reference_splitmix64(column))) & _U64
    return (_reference_splitmix64(total) >> 11) / 2.0**53


def _reference_aps_scores(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Romano et al.'s randomised APS score of every class, one item at a time, from the definition."""
    scores = np.empty_like(probs)
    for i, row in enumerate(probs):
        order = np.argsort(-row, kind="stable")  # decreasing, ties by class order
        ordered = row[order]
        above = np.cumsum(ordered) - ordered  # mass ranked above each class
        scores[i, order] = above + u[i] * ordered
    return scores


# -- seeded data -------------------------------------------------------------------------------------
def _calibrated(kind: str, n: int, *, seed: int) -> tuple[Task, torch.Tensor, torch.Tensor]:
    """Probabilities and targets drawn FROM those probabilities, so the model is calibrated by construction.

    Confident on purpose (top-class accuracy about 0.85-0.9): at level 0.8 sets that always hold the top class
    would over-cover by 0.05 or more, so only a randomised method passes the coverage test.
    """
    task = make_task(kind)
    rng = np.random.default_rng(seed)
    if task.kind is TaskKind.MULTILABEL:
        probs = rng.beta(0.2, 0.4, size=(n, task.num_classes))
        targets = torch.tensor(rng.random(probs.shape) < probs, dtype=torch.float32)
        return task, torch.tensor(probs, dtype=torch.float32), targets
    concentration = 0.2 if task.kind is TaskKind.BINARY else 0.1
    probs = rng.dirichlet(np.full(task.num_classes, concentration), size=n)
    indices = (rng.random((n, 1)) > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=task.num_classes - 1)
    return task, torch.tensor(probs, dtype=torch.float32), torch.tensor(indices).to(task.target_dtype)


def _fixed_uniforms(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> None:
    """Replace the hashed ``u`` by ``values`` (one per row) so scores can be worked out on paper."""
    monkeypatch.setattr(scores_module, "uniforms", lambda probs: torch.tensor(values, dtype=torch.float64))


# Six items, three classes, dyadic numbers so every sum below is exact. Worked out by hand, level 0.7:
# k = ceil(7 * 0.7) = 5, so qhat is the 5th smallest of the six scores.
HAND_PROBS = torch.tensor(
    [
        [0.5, 0.25, 0.25],  # truth a, rank 1, u 1/2: APS 0 + 0.5 * 0.5 = 0.25
        [0.125, 0.75, 0.125],  # truth b, rank 1, u 1/2: 0.375
        [0.25, 0.25, 0.5],  # truth a, rank 2 (c, a, b), u 1/2: 0.5 + 0.125 = 0.625
        [0.625, 0.25, 0.125],  # truth c, rank 3, u 1/2: 0.875 + 0.0625 = 0.9375
        [0.75, 0.125, 0.125],  # truth a, rank 1, u 1/4: 0.1875
        [0.5, 0.375, 0.125],  # truth b, rank 2, u 3/4: 0.5 + 0.28125 = 0.78125
    ]
)
HAND_TARGETS = torch.tensor([0, 1, 0, 2, 0, 1])
HAND_U = [0.5, 0.5, 0.5, 0.5, 0.25, 0.75]


def _hand_task() -> Task:
    return Task(kind=TaskKind.MULTICLASS, classes=("a", "b", "c"))


# -- min_calibration_size ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "expected"), [(0.5, 1), (0.7, 3), (0.8, 4), (0.9, 9), (0.95, 19), (0.99, 99), (0.999, 999)]
)
def test_min_calibration_size_is_the_fewest_items_with_a_cutoff(level: float, expected: int) -> None:
    exact = Fraction(str(level))
    # From the definition: the smallest n with ceil((n + 1) * level) <= n.
    assert min(n for n in range(1, 2000) if math.ceil((n + 1) * exact) <= n) == expected
    assert min_calibration_size(level) == expected


def test_fit_needs_exactly_min_calibration_size_items() -> None:
    task, probs, targets = _calibrated("multiclass", 19, seed=0)
    fit_conformal(probs, targets, task, level=0.95)
    with pytest.raises(DataError, match=r"at least 19 validation items, got 18.*larger validation split or a lower"):
        fit_conformal(probs[:18], targets[:18], task, level=0.95)


# -- hand-checked cutoffs and sets -------------------------------------------------------------------
def test_aps_matches_the_hand_computation(monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_uniforms(monkeypatch, HAND_U)
    conformal = fit_conformal(HAND_PROBS, HAND_TARGETS, _hand_task(), level=0.7, method="aps")
    # Scores 0.1875, 0.25, 0.375, 0.625, 0.78125, 0.9375: the 5th is 0.78125.
    assert (conformal.method, conformal.qhat, conformal.num_samples) == ("aps", 0.78125, 6)
    _fixed_uniforms(monkeypatch, [0.5, 0.9375, 0.0])
    new = torch.tensor([[0.5, 0.25, 0.25], [0.875, 0.0625, 0.0625], [0.25, 0.25, 0.5]])
    expected = [
        [True, True, False],  # a 0.25, b 0.5 + 0.125 = 0.625, c 0.75 + 0.125 = 0.875 > 0.78125
        [False, False, False],  # confident and u large: a 0.9375 * 0.875 = 0.8203 > 0.78125, an empty set
        [True, True, True],  # u 0: c 0, a 0.5, b 0.75: all <= 0.78125
    ]
    assert conformal.sets(new).tolist() == expected


def test_raps_matches_the_hand_computation(monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_uniforms(monkeypatch, HAND_U)
    conformal = fit_conformal(HAND_PROBS, HAND_TARGETS, _hand_task(), level=0.7, method="raps", penalty=0.125, k_reg=1)
    # APS scores + 0.125 * (rank - 1): 0.25, 0.375, 0.75, 1.1875, 0.1875, 0.90625; the 5th smallest is 0.90625.
    assert (conformal.qhat, conformal.penalty, conformal.k_reg) == (0.90625, 0.125, 1)
    _fixed_uniforms(monkeypatch, [0.5])
    # a 0.25; b 0.625 + 0.125 = 0.75; c 0.875 + 0.25 = 1.125 > 0.90625 (APS alone would keep c at 0.875)
    assert conformal.sets(torch.tensor([[0.5, 0.25, 0.25]])).tolist() == [[True, True, False]]


def test_raps_default_k_reg_is_the_level_quantile_of_the_true_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_uniforms(monkeypatch, HAND_U)
    conformal = fit_conformal(HAND_PROBS, HAND_TARGETS, _hand_task(), level=0.7, method="raps")
    # True ranks 1, 1, 2, 3, 1, 2 -> sorted 1, 1, 1, 2, 2, 3: the 5th is 2.
    assert (conformal.k_reg, conformal.penalty) == (2, RAPS_PENALTY)


def test_threshold_matches_the_hand_computation() -> None:
    conformal = fit_conformal(HAND_PROBS, HAND_TARGETS, _hand_task(), level=0.7, method="threshold")
    # 1 - p(truth): 0.5, 0.25, 0.75, 0.875, 0.25, 0.625; the 5th smallest is 0.75: classes with p >= 0.25.
    assert conformal.qhat == 0.75
    assert conformal.sets(torch.tensor([[0.5, 0.25, 0.25], [0.875, 0.0625, 0.0625]])).tolist() == [
        [True, True, True],
        [True, False, False],
    ]


def test_multilabel_items_without_labels_score_zero_and_are_covered() -> None:
    task = make_task("multilabel")
    probs = torch.tensor(
        [[0.875, 0.25, 0.5, 0.125], [0.5, 0.5, 0.5, 0.5], [0.25, 0.75, 0.125, 0.125], [0.625, 0.125, 0.125, 0.875]]
        + [[0.25, 0.25, 0.25, 0.25]] * 2
    )
    targets = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0.0]])
    conformal = fit_conformal(probs, targets, task, level=0.7)
    # Item scores: max(0.125, 0.5) = 0.5, 0 (none), 0.25, max(0.375, 0.125) = 0.375, 0, 0 -> the 5th smallest
    # is 0.375; the three items with no label are below it, covered by whatever set they get.
    assert (conformal.method, conformal.qhat) == ("threshold", 0.375)
    sets = conformal.sets(probs)
    assert sets.tolist()[:2] == [[True, False, False, False], [False, False, False, False]]  # labels with p >= 0.625
    assert set_metrics(sets, targets, task)["set_coverage"] == 5 / 6  # all but the first item


# -- the cutoff against crepes' conformal p-values ---------------------------------------------------
@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
@pytest.mark.parametrize("num_samples", [19, 57, 200, 1001])
def test_aps_sets_equal_crepes_on_reference_scores(num_samples: int, level: float) -> None:
    task, probs, targets = _calibrated("multiclass", num_samples + 300, seed=num_samples)
    cal_probs, test_probs = probs[:num_samples], probs[num_samples:]
    u_cal = np.array([_reference_uniform(row) for row in cal_probs.tolist()])
    u_test = np.array([_reference_uniform(row) for row in test_probs.tolist()])
    cal_scores = _reference_aps_scores(cal_probs.double().numpy(), u_cal)[np.arange(num_samples), targets[:num_samples]]
    test_scores = _reference_aps_scores(test_probs.double().numpy(), u_test)
    # crepes' non-smoothed p-value is (#{calibration scores >= s} + 1) / (n + 1); a class belongs to the set when
    # it exceeds 1 - level (Vovk et al.), compared exactly on the integer count.
    p_values = ConformalClassifier().fit(cal_scores).predict_p(test_scores, smoothing=False)
    counts = np.rint(p_values * (num_samples + 1)).astype(int)
    expected = counts > (num_samples + 1) * (1 - Fraction(str(level)))
    conformal = fit_conformal(cal_probs, targets[:num_samples], task, level=level, method="aps")
    np.testing.assert_array_equal(conformal.sets(test_probs).numpy(), expected)


def test_uniforms_match_the_reference_hash_and_look_uniform() -> None:
    rng = np.random.default_rng(0)
    probs = torch.tensor(rng.dirichlet(np.ones(5), size=20_000), dtype=torch.float32)
    u = scores_module.uniforms(probs)
    assert u.dtype == torch.float64
    assert u[:200].tolist() == [_reference_uniform(row) for row in probs[:200].tolist()]
    assert 0.0 <= u.min().item() and u.max().item() < 1.0
    # 10 equal bins of 20000 draws: 2000 expected each, binomial sd ~42; 5 sd is a broken hash, not bad luck.
    counts = torch.histc(u, bins=10, min=0.0, max=1.0)
    assert (counts - 2000).abs().max().item() < 5 * 42
    # Rows one float32 ulp apart get unrelated u; -0.0 and 0.0 are the same probability.
    nudged = probs[:1].clone()
    nudged[0, 0] = torch.nextafter(nudged[0, 0], torch.tensor(1.0))
    assert abs(scores_module.uniforms(nudged).item() - u[0].item()) > 1e-6
    signed_zero = torch.tensor([[0.0, 1.0], [-0.0, 1.0]])
    assert torch.unique(scores_module.uniforms(signed_zero)).numel() == 1


# -- coverage on calibrated data ---------------------------------------------------------------------
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("kind", "method"), METHODS)
def test_coverage_is_close_to_the_level(kind: str, method: str, level: float) -> None:
    # Coverage given one calibration draw of 2000 varies with sd ~sqrt(level (1 - level) / 2000) <= 0.009; the
    # mean over 8 draws on one test split of 20000 has sd <= 0.004, so 0.015 is over 3.5 sd from a correct method,
    # while sets that always hold the top class cover >= 0.85 at level 0.8 (see `_calibrated`).
    task, test_probs, test_targets = _calibrated(kind, 20_000, seed=1000)
    coverages = []
    for seed in range(8):
        _, probs, targets = _calibrated(kind, 2000, seed=seed)
        conformal = fit_conformal(probs, targets, task, level=level, method=method)
        coverages.append(set_metrics(conformal.sets(test_probs), test_targets, task)["set_coverage"])
    assert abs(np.mean(coverages) - level) < 0.015, coverages


@pytest.mark.parametrize(("kind", "method"), METHODS)
def test_sets_grow_with_the_level(kind: str, method: str) -> None:
    task, probs, targets = _calibrated(kind, 500, seed=3)
    _, test_probs, _ = _calibrated(kind, 2000, seed=4)
    # RAPS's default k_reg depends on the level; with it fixed, only the cutoff moves.
    fixed = {"k_reg": 2} if method == "raps" else {}
    sets = [
        fit_conformal(probs, targets, task, level=level, method=method, **fixed).sets(test_probs) for level in LEVELS
    ]
    for smaller, larger in zip(sets, sets[1:], strict=False):
        assert not (smaller & ~larger).any()
    assert sets[-1].sum() > sets[0].sum()


def test_raps_sets_are_smaller_than_aps_on_a_long_noisy_tail() -> None:
    # 100 classes; the truth is the model's top class (80%), second (15%) or a random other (5%), while the model
    # spreads half its mass thinly over the tail. APS must walk far into the tail to reach its cutoff mass; RAPS's
    # per-rank penalty stops it (Angelopoulos et al. 2021, the ImageNet case).
    task = Task(kind=TaskKind.MULTICLASS, classes=tuple(range(100)))
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        top = rng.uniform(0.2, 0.5, size=(n, 1))
        probs = np.concatenate([top, top / 2, (1 - 1.5 * top) * rng.dirichlet(np.full(98, 5.0), size=n)], axis=1)
        classes = rng.permuted(np.tile(np.arange(100), (n, 1)), axis=1)  # which class sits at each rank
        probs[np.arange(n)[:, None], classes] = probs.copy()
        rank = np.where(rng.random(n) < 0.8, 0, np.where(rng.random(n) < 0.75, 1, rng.integers(2, 100, n)))
        return torch.tensor(probs, dtype=torch.float32), torch.tensor(classes[np.arange(n), rank])

    probs, targets = draw(2000)
    test_probs, test_targets = draw(5000)
    sizes = {}
    for method in ("aps", "raps"):
        conformal = fit_conformal(probs, targets, task, level=0.9, method=method)
        metrics = set_metrics(conformal.sets(test_probs), test_targets, task)
        assert abs(metrics["set_coverage"] - 0.9) < 0.02
        sizes[method] = metrics["mean_set_size"]
    # Measured over seeds 0-5: APS 4.5-5.4 classes, RAPS 3.1-3.5 (k_reg 2), a ratio of 0.67-0.69.
    assert sizes["raps"] < 0.8 * sizes["aps"], sizes


# -- determinism and storage -------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "method"), METHODS)
def test_sets_are_the_same_per_row_and_after_a_json_round_trip(kind: str, method: str) -> None:
    task, probs, targets = _calibrated(kind, 300, seed=5)
    conformal = fit_conformal(probs, targets, task, level=0.9, method=method)
    batch = conformal.sets(probs)
    assert torch.equal(torch.cat([conformal.sets(row[None]) for row in probs]), batch)
    order = torch.randperm(len(probs), generator=torch.Generator().manual_seed(0))
    assert torch.equal(conformal.sets(probs[order]), batch[order])
    reloaded = ConformalSets.from_dict(json.loads(json.dumps(conformal.to_dict())))
    assert reloaded == conformal
    assert torch.equal(reloaded.sets(probs), batch)
    # The guarantee is at least `level` on the fitting items too (no ties here).
    assert set_metrics(batch, targets, task)["set_coverage"] >= 0.9


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("kind", "method"), METHODS)
def test_sets_on_cuda_equal_sets_on_cpu(kind: str, method: str) -> None:
    # The hash relies on int64 wrap-around and the scores on a row-wise cumsum; both must agree across devices.
    task, probs, targets = _calibrated(kind, 300, seed=7)
    conformal = fit_conformal(probs, targets, task, level=0.9, method=method)
    assert fit_conformal(probs.cuda(), targets.cuda(), task, level=0.9, method=method) == conformal
    assert torch.equal(scores_module.uniforms(probs.cuda()).cpu(), scores_module.uniforms(probs))
    assert torch.equal(conformal.sets(probs.cuda()).cpu(), conformal.sets(probs))


@pytest.mark.parametrize(
    "options", [{"head": "two_logits"}, {"head": "one_vs_rest"}], ids=["two-logits", "one-vs-rest"]
)
def test_binary_float_and_long_targets_give_the_same_sets(options: dict[str, object]) -> None:
    # One logit encodes binary targets as float 0/1; two logits and one-vs-rest heads as long indices. The
    # probabilities are two columns either way, so the sets must not depend on the head.
    task, probs, targets = _calibrated("binary", 300, seed=6)
    other = Task(kind=TaskKind.BINARY, classes=task.classes, **options)  # type: ignore[arg-type]
    assert targets.dtype == torch.float32 and other.target_dtype == torch.long
    assert fit_conformal(probs, targets.long(), other, level=0.9) == fit_conformal(probs, targets, task, level=0.9)


def test_saturated_probabilities_warn_that_ties_over_cover() -> None:
    task = make_task("binary")
    # 60 of 100 items say exactly [0, 1] and are right; identical rows get identical u and identical sets.
    probs = torch.tensor([[0.0, 1.0]] * 60 + [[1 - p, p] for p in np.linspace(0.05, 0.95, 40)])
    targets = torch.tensor([1.0] * 60 + [1.0 if i % 2 else 0.0 for i in range(40)])
    with pytest.warns(DataWarning, match=r"score exactly the conformal cutoff.*saturated at exactly 0 or 1.*break the"):
        fit_conformal(probs, targets, task, level=0.5)


# -- describe, metrics -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"kind": "binary", "method": "aps", "qhat": 0.8123},
            "APS prediction sets hold the true class for >= 90% of items (cutoff 0.812 from 120 validation items)",
        ),
        (
            {"kind": "multiclass", "method": "raps", "qhat": 1.07, "penalty": 0.01, "k_reg": 3},
            "RAPS (penalty 0.01 past rank 3) prediction sets hold the true class for >= 90% of items "
            "(cutoff 1.07 from 120 validation items)",
        ),
        (
            {"kind": "multilabel", "method": "threshold", "qhat": 0.75},
            "threshold (all labels with P >= 0.25) prediction sets hold all true labels for >= 90% of items "
            "(cutoff 0.75 from 120 validation items)",
        ),
    ],
)
def test_describe(fields: dict[str, object], expected: str) -> None:
    conformal = ConformalSets(level=0.9, num_classes=4, num_samples=120, **fields)  # type: ignore[arg-type]
    assert conformal.describe() == expected


@pytest.mark.parametrize(
    ("kind", "targets", "expected"),
    [
        ("binary", [1.0, 0.0, 0.0, 1.0], {"set_coverage": 0.5, "mean_set_size": 1.0, "empty_set_rate": 0.25}),
        ("multiclass", [1, 0, 3, 2], {"set_coverage": 0.5, "mean_set_size": 1.5, "empty_set_rate": 0.25}),
        # Multilabel: every true label must be in the set; the item with no label is covered by its empty set.
        (
            "multilabel",
            [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]],
            {"set_coverage": 0.5, "mean_set_size": 1.5, "empty_set_rate": 0.25},
        ),
    ],
)
def test_set_metrics_by_hand(kind: str, targets: list[object], expected: dict[str, float]) -> None:
    task = make_task(kind)
    width = task.num_classes
    rows = {2: [[1, 1], [0, 0], [1, 0], [1, 0]], 4: [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 1]]}
    sets = torch.tensor(rows[width], dtype=torch.bool)
    assert set_metrics(sets, torch.tensor(targets).to(task.target_dtype), task) == pytest.approx(expected)


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "match"),
    [
        (0.0, r"level=0\.0; expected a number strictly between 0 and 1"),
        (1.0, r"level=1\.0; expected a number strictly between 0 and 1"),
        (-0.1, r"level=-0\.1; expected"),
        (90, r"level=90; expected.*Levels are fractions: for 90% pass 0\.9\."),
        (True, r"level=True; expected"),
        ("0.9", r"level='0\.9'; expected"),
        (float("nan"), r"level=nan; expected"),
    ],
)
def test_a_level_outside_zero_one_is_refused(level: object, match: str) -> None:
    task, probs, targets = _calibrated("multiclass", 50, seed=0)
    fix = r".*Pass e\.g\. `--conformal 0\.9`\.$"
    with pytest.raises(ConfigError, match=match + fix):
        fit_conformal(probs, targets, task, level=level)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=match + fix):
        min_calibration_size(level)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=match + fix):
        ConformalSets(kind=TaskKind.MULTICLASS, method="aps", level=level, qhat=0.5, num_classes=4)  # type: ignore[arg-type]


def test_too_few_items_say_how_many_and_what_level_they_allow() -> None:
    task, probs, targets = _calibrated("binary", 12, seed=0)
    with pytest.raises(
        DataError,
        match=r"level 0\.95 need at least 19 validation items, got 12.*Use a larger validation split or a lower "
        r"`--conformal` level \(12 items allow at most 0\.923\)",
    ):
        fit_conformal(probs, targets, task, level=0.95)


@pytest.mark.parametrize(
    ("kind", "method", "options", "match"),
    [
        ("multiclass", "apss", {}, r"method='apss' is unknown; expected one of auto, aps, raps, threshold\. Did you "),
        ("multiclass", "rap", {}, r"Did you mean 'raps'\?"),
        ("multilabel", "aps", {}, r"a multilabel item can hold several\. Use method='threshold' \(or 'auto'\)"),
        ("multiclass", "aps", {"penalty": 0.1}, r"penalty only apply to method='raps', not 'aps'.*pass method='raps'"),
        ("multiclass", "auto", {"k_reg": 2}, r"k_reg only apply to method='raps'"),
        ("multiclass", "raps", {"penalty": -1.0}, r"penalty=-1\.0; expected a finite number >= 0 \(default 0\.01\)"),
        ("multiclass", "raps", {"k_reg": 1.5}, r"k_reg=1\.5; expected an integer >= 0"),
    ],
)
def test_bad_methods_and_options_are_refused(kind: str, method: str, options: dict[str, object], match: str) -> None:
    task, probs, targets = _calibrated(kind, 50, seed=0)
    with pytest.raises(ConfigError, match=match):
        fit_conformal(probs, targets, task, level=0.9, method=method, **options)  # type: ignore[arg-type]


def test_probs_and_targets_are_checked_against_the_task() -> None:
    task, probs, targets = _calibrated("multiclass", 50, seed=0)
    with pytest.raises(ConfigError, match=r"expected \(N, 4\).*Pass `task\.probabilities\(logits\)`"):
        fit_conformal(probs[:, :3], targets, task, level=0.9)
    with pytest.raises(ConfigError, match=r"These look like logits"):
        fit_conformal(probs * 10, targets, task, level=0.9)
    with pytest.raises(LabelError, match=r"expected \(50,\)\. Build targets with `task\.encode\(labels\)`"):
        fit_conformal(probs, targets[:40], task, level=0.9)
    conformal = fit_conformal(probs, targets, task, level=0.9)
    with pytest.raises(ConfigError, match=r"expected \(N, 4\)"):
        conformal.sets(probs[:, :2])


def test_from_dict_refuses_unknown_fields_and_bad_values() -> None:
    data = ConformalSets(kind=TaskKind.MULTICLASS, method="aps", level=0.9, qhat=0.8, num_classes=4).to_dict()
    with pytest.raises(ConfigError, match=r"'levle' \(did you mean 'level'\?\); expected some of kind, method, level"):
        ConformalSets.from_dict({**data, "levle": 0.9})
    with pytest.raises(ConfigError, match=r"qhat=nan; expected a finite number\. Fit it with `fit_conformal`"):
        ConformalSets.from_dict({**data, "qhat": float("nan")})
    with pytest.raises(ConfigError, match=r"method='auto'; a fitted ConformalSets names its method"):
        ConformalSets.from_dict({**data, "method": "auto"})
    with pytest.raises(ConfigError, match=r"needs penalty and k_reg, got \['penalty'\]"):
        ConformalSets.from_dict({**data, "method": "raps", "penalty": 0.01})
    with pytest.raises(ConfigError, match=r"num_classes=1; expected an integer >= 2"):
        ConformalSets.from_dict({**data, "num_classes": 1})


def test_set_metrics_refuses_sets_that_are_not_bool_rows_of_the_task() -> None:
    task = make_task("multiclass")
    with pytest.raises(ConfigError, match=r"\(3, 4\) torch\.int64.*expected a \(N, 4\) bool tensor.*`conformal\.sets"):
        set_metrics(torch.zeros(3, 4, dtype=torch.long), torch.tensor([0, 1, 2]), task)
    with pytest.raises(LabelError, match=r"expected \(3,\)"):
        set_metrics(torch.zeros(3, 4, dtype=torch.bool), torch.tensor([0, 1]), task)
