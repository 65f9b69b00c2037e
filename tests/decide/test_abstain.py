"""labelwise.decide.abstain: the reject rule against hand-checked cases and a brute-force search, its invariants,
its errors and its round trip through JSON."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _factories import make_task
from labelwise.decide.abstain import Abstention, fit_abstention
from labelwise.decide.ood import unknown_scores
from labelwise.errors import ConfigError, DataError, DataWarning

# Ten items scoring 1..10; the 5th, 8th and 10th lowest are wrong. Selective accuracy of the k lowest:
# 1, 1, 1, 1, 4/5, 5/6, 6/7, 6/8, 7/9, 7/10.
SCORES = torch.arange(1, 11, dtype=torch.float64)
CORRECT = torch.tensor([1, 1, 1, 1, 0, 1, 1, 0, 1, 0]).bool()
# Scores with many ties (a handful of values) mixed with arbitrary ones.
SCORE = st.one_of(st.sampled_from([-2.0, 0.0, 0.25, 0.5, 1.0]), st.floats(-50.0, 50.0, allow_subnormal=False))
FRACTION = st.one_of(st.sampled_from([0.5, 0.9, 0.95, 1.0]), st.floats(0.01, 1.0))
RULE = {
    "score": "energy",
    "threshold": -3.2,
    "target": "coverage",
    "target_value": 0.95,
    "valid_coverage": 0.95,
    "valid_selective_accuracy": 0.996,
    "num_samples": 288,
}


def _fields(rule: Abstention) -> tuple[Any, ...]:
    return (rule.threshold, rule.valid_coverage, rule.valid_selective_accuracy, rule.num_samples)


# -- hand-checked fits -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        # 80% of ten items: the eight lowest, up to score 8, six of them right.
        pytest.param({"coverage": 0.8}, (8.0, 0.8, 0.75, 10), id="coverage"),
        # 0.25 of ten is 2.5 items: the smallest threshold that reaches it accepts three.
        pytest.param({"coverage": 0.25}, (3.0, 0.3, 1.0, 10), id="coverage-rounds-up"),
        pytest.param({"coverage": 1.0}, (10.0, 1.0, 0.7, 10), id="coverage-all"),
        # 6/7 >= 0.8 and no larger coverage reaches it (6/8, 7/9, 7/10 fall short); 4/5 at five items would too.
        pytest.param({"selective_accuracy": 0.8}, (7.0, 0.7, 6 / 7, 10), id="selective-accuracy"),
        pytest.param({"selective_accuracy": 1.0}, (4.0, 0.4, 1.0, 10), id="selective-accuracy-1"),
    ],
)
def test_fit_hand_checked(target: dict[str, float], expected: tuple[Any, ...]) -> None:
    rule = fit_abstention(SCORES, CORRECT, score="max_prob", **target)
    assert _fields(rule) == pytest.approx(expected, abs=1e-15)
    assert (rule.target, rule.target_value) == next(iter(target.items()))
    assert rule.abstains(SCORES).double().mean().item() == pytest.approx(1 - rule.valid_coverage)


def test_ties_are_accepted_together() -> None:
    rule = fit_abstention(
        torch.tensor([0.0, 0.0, 0.0, 1.0, 2.0]), torch.ones(5, dtype=torch.bool), score="max_prob", coverage=0.5
    )
    assert (rule.threshold, rule.valid_coverage) == (0.0, 0.6)
    assert rule.describe() == (
        "abstain when 1 - max prob > 0: 60% coverage on 5 validation items, selective accuracy 1.000 "
        "(target 50%, the nearest reachable at or above it)"
    )


def test_unreachable_selective_accuracy_warns_and_uses_the_best() -> None:
    # Running accuracies 0, 1/2, 2/3, 3/4, 4/5, 4/6: the best, 0.8, is at five of six items.
    correct = torch.tensor([0, 1, 1, 1, 1, 0]).bool()
    with pytest.warns(
        DataWarning,
        match=r"no coverage reaches selective accuracy 0\.9 on the 6 validation items: the best is 0\.8, at 83\.3% "
        r"coverage \(abstain when energy > 5\).*Lower `--selective-accuracy`, fit for `--coverage` instead",
    ):
        rule = fit_abstention(torch.arange(1, 7, dtype=torch.float64), correct, score="energy", selective_accuracy=0.9)
    assert _fields(rule) == pytest.approx((5.0, 5 / 6, 0.8, 6))
    assert rule.describe().endswith("selective accuracy 0.800 (target 0.9 not reached)")


@pytest.mark.parametrize(
    ("head", "options"),
    [
        pytest.param("binary", {}, id="binary-one-logit"),
        pytest.param("multiclass", {}, id="multiclass"),
        pytest.param("multiclass", {"head": "one_vs_rest"}, id="multiclass-one-vs-rest"),
    ],
)
def test_fit_on_unknown_scores_of_each_head(head: str, options: dict[str, bool]) -> None:
    task = replace(make_task(head), **options)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(200, task.head_width, generator=gen) * 3
    targets = torch.randint(0, task.num_classes, (200,), generator=gen)
    correct = task.probabilities(logits).argmax(dim=1) == targets
    scores = unknown_scores(logits, task, score="max_prob")
    rule = fit_abstention(scores, correct, score="max_prob", coverage=0.9)
    assert rule.valid_coverage == 0.9  # continuous scores: no ties, so exactly 180 of 200
    assert rule.abstains(scores).sum().item() == 20


# -- invariants --------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(scores=st.lists(SCORE, min_size=1, max_size=60), low=SCORE, high=SCORE)
def test_coverage_never_rises_as_the_threshold_falls(scores: list[float], low: float, high: float) -> None:
    low, high = sorted((low, high))
    values = torch.tensor(scores, dtype=torch.float64)
    accepted = [(~replace(Abstention(**RULE), threshold=t).abstains(values)).sum().item() for t in (low, high)]
    assert accepted[0] <= accepted[1]


@settings(max_examples=80, deadline=None)
@given(data=st.lists(st.tuples(SCORE, st.booleans()), min_size=1, max_size=60), a=FRACTION, b=FRACTION)
def test_fitted_coverage_is_the_smallest_threshold_reaching_it(
    data: list[tuple[float, bool]], a: float, b: float
) -> None:
    scores = torch.tensor([s for s, _ in data], dtype=torch.float64)
    correct = torch.tensor([c for _, c in data])
    low, high = (fit_abstention(scores, correct, score="energy", coverage=c) for c in sorted((a, b)))
    assert low.threshold <= high.threshold and low.valid_coverage <= high.valid_coverage
    for rule in (low, high):
        accepted = scores <= rule.threshold
        assert rule.valid_coverage == accepted.double().mean().item() >= rule.target_value
        assert rule.valid_selective_accuracy == correct[accepted].double().mean().item()
        below = scores[scores < rule.threshold]  # the next smaller distinct score falls short of the target
        if len(below):
            assert (scores <= below.max()).double().mean().item() < rule.target_value


@settings(max_examples=80, deadline=None)
@given(data=st.lists(st.tuples(SCORE, st.booleans()), min_size=1, max_size=60), target=FRACTION)
def test_fitted_selective_accuracy_matches_brute_force(data: list[tuple[float, bool]], target: float) -> None:
    scores = torch.tensor([s for s, _ in data], dtype=torch.float64)
    correct = torch.tensor([c for _, c in data])
    # Every distinct score as a threshold: (coverage, selective accuracy), in plain Python.
    candidates = []
    for t in sorted(set(scores.tolist())):
        kept = [c for s, c in data if s <= t]
        candidates.append((len(kept) / len(data), sum(kept) / len(kept), t))
    reaching = [c for c in candidates if c[1] >= target]
    expected = max(reaching) if reaching else max(candidates, key=lambda c: (c[1], c[0]))
    with pytest.warns(DataWarning) if not reaching else contextlib.nullcontext():  # warnings are errors
        rule = fit_abstention(scores, correct, score="max_prob", selective_accuracy=target)
    assert (rule.valid_coverage, rule.valid_selective_accuracy, rule.threshold) == pytest.approx(expected, abs=1e-15)


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("targets", "match"),
    [
        pytest.param(
            {},
            r"got neither of `coverage` and `selective_accuracy`; expected exactly one.*`--coverage C`",
            id="neither",
        ),
        pytest.param({"coverage": 0.9, "selective_accuracy": 0.9}, r"got both.*`--selective-accuracy A`", id="both"),
        pytest.param({"coverage": 1.5}, r"coverage=1\.5 is outside \(0, 1\].*such as `--coverage 0\.95`", id="high"),
        pytest.param({"coverage": 0}, r"coverage=0 is outside \(0, 1\]", id="zero"),
        pytest.param({"coverage": True}, r"coverage=True is outside", id="bool"),
        pytest.param(
            {"selective_accuracy": -0.1},
            r"selective_accuracy=-0\.1 is outside \(0, 1\].*"
            r"`--selective-accuracy 0\.99`",
            id="accuracy",
        ),
    ],
)
def test_bad_targets_raise(targets: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        fit_abstention(SCORES, CORRECT, score="max_prob", **targets)


def test_bad_score_name_raises() -> None:
    with pytest.raises(
        ConfigError, match=r"score='max_porb'.*expected one of max_prob, energy\. Did you mean 'max_prob'"
    ):
        fit_abstention(SCORES, CORRECT, score="max_porb", coverage=0.9)


def test_no_items_raise() -> None:
    with pytest.raises(
        DataError, match=r"no items to score \(0 scores\); expected at least one.*Give a validation split"
    ):
        fit_abstention(torch.zeros(0), torch.zeros(0, dtype=torch.bool), score="max_prob", coverage=0.9)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        pytest.param({"score": "entropy"}, r"score='entropy'.*expected one of max_prob, energy", id="score"),
        pytest.param(
            {"target": "accuracy"}, r"target='accuracy'; expected one of coverage, selective_accuracy", id="target"
        ),
        pytest.param(
            {"threshold": float("nan")}, r"threshold=nan.*expected finite numbers.*`fit_abstention`", id="nan"
        ),
        pytest.param({"target_value": 0.0}, r"target_value=0\.0; expected target_value in \(0, 1\]", id="zero"),
        pytest.param({"valid_coverage": 1.2}, r"valid_coverage=1\.2; expected.*in \[0, 1\]", id="coverage"),
        pytest.param({"num_samples": 0}, r"num_samples=0; expected an integer >= 1", id="samples"),
    ],
)
def test_bad_abstention_fields_raise(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Abstention(**(RULE | changes))


def test_abstains_takes_a_float_vector() -> None:
    with pytest.raises(ConfigError, match=r"\(N,\) float tensor, got shape \(2, 1\).*score='energy'"):
        Abstention(**RULE).abstains(torch.zeros(2, 1))


def test_nan_scores_abstain() -> None:
    scores = torch.tensor([-5.0, float("nan")], dtype=torch.float64)
    assert Abstention(**RULE).abstains(scores).tolist() == [False, True]


# -- storage and summary -----------------------------------------------------------------------------
def test_round_trip_through_json() -> None:
    rule = fit_abstention(SCORES * 0.1, CORRECT, score="energy", selective_accuracy=0.8)
    assert Abstention.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(
            RULE | {"threshhold": 1.0},
            r"unknown Abstention fields 'threshhold' \(did you mean 'threshold'\?\)"
            r".*upgrade to load it",
            id="unknown",
        ),
        pytest.param(
            {k: v for k, v in RULE.items() if k != "num_samples"}, r"'num_samples' are missing.*Refit", id="missing"
        ),
    ],
)
def test_from_dict_rejects_bad_keys(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Abstention.from_dict(data)


def test_describe() -> None:
    assert Abstention(**RULE).describe() == (
        "abstain when energy > -3.2: 95% coverage on 288 validation items, selective accuracy 0.996"
    )
    reached = fit_abstention(SCORES, CORRECT, score="max_prob", selective_accuracy=0.8)
    assert reached.describe() == (
        "abstain when 1 - max prob > 7: 70% coverage on 10 validation items, selective accuracy 0.857 (target 0.8)"
    )
