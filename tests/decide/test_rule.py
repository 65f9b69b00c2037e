"""labelwise.decide.rule: DecisionRule's decisions against numpy and sklearn, its summary line, storage and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

from _factories import make_task
from labelwise.decide.rule import DecisionRule
from labelwise.errors import ConfigError
from labelwise.task import Task, TaskKind

CLASSES = {
    TaskKind.BINARY: ("benign", "malignant"),
    TaskKind.MULTICLASS: ("bird", "cat", "dog"),
    TaskKind.MULTILABEL: ("cloud", "haze", "road"),
}
# A rule of each kind with thresholds other than 0.5, so that 0.5 cannot pass for them.
RULES = {
    TaskKind.BINARY: DecisionRule(kind="binary", classes=CLASSES[TaskKind.BINARY], threshold=0.3),
    TaskKind.MULTICLASS: DecisionRule(kind="multiclass", classes=CLASSES[TaskKind.MULTICLASS]),
    TaskKind.MULTILABEL: DecisionRule(
        kind="multilabel", classes=CLASSES[TaskKind.MULTILABEL], thresholds=(0.2, 0.5, 0.8)
    ),
}


def _probs(kind: TaskKind, n: int = 200, *, seed: int = 0) -> torch.Tensor:
    """Valid float32 probabilities for ``kind``: rows summing to 1 for single-label, free per label for multilabel."""
    gen = torch.Generator().manual_seed(seed)
    raw = torch.rand(n, len(CLASSES[kind]), generator=gen)
    return raw if kind is TaskKind.MULTILABEL else raw / raw.sum(dim=1, keepdim=True)


def _reference_decisions(kind: TaskKind, probs: np.ndarray, rule: DecisionRule) -> np.ndarray:
    """The rule from its definition, in numpy float64: ``p >= threshold``, or argmax."""
    p = probs.astype(np.float64)
    if kind is TaskKind.MULTICLASS:
        return p.argmax(axis=1)
    if kind is TaskKind.BINARY:
        return (p[:, 1] >= rule.threshold).astype(np.int64)
    return p >= np.asarray(rule.thresholds)


def test_decide_matches_the_definition(kind: TaskKind) -> None:
    rule, probs = RULES[kind], _probs(kind)
    decisions = rule.decide(probs)
    expected = _reference_decisions(kind, probs.numpy(), rule)
    assert decisions.dtype == (torch.bool if kind is TaskKind.MULTILABEL else torch.long)
    np.testing.assert_array_equal(decisions.numpy(), expected)


def test_binary_decisions_score_as_sklearn_scores_the_thresholded_probabilities() -> None:
    probs = _probs(TaskKind.BINARY, seed=1)
    targets = (torch.rand(200, generator=torch.Generator().manual_seed(2)) < probs[:, 1]).long().numpy()
    for threshold in (0.1, 0.3, 0.5, 0.9):
        rule = DecisionRule(kind="binary", classes=CLASSES[TaskKind.BINARY], threshold=threshold)
        # sklearn's own thresholding of the positive column: predict positive where p >= threshold.
        expected = skm.f1_score(targets, (probs[:, 1].double().numpy() >= threshold).astype(int))
        assert skm.f1_score(targets, rule.decide(probs).numpy()) == expected


def test_thresholds_compare_in_float64_and_include_equality() -> None:
    # float32(0.3) = 0.300000011920929; the threshold 0.300000012 lies just above it, but rounds to it in float32.
    probs = torch.tensor([[0.7, 0.3], [0.75, 0.25]], dtype=torch.float32)
    above = DecisionRule(kind="binary", classes=CLASSES[TaskKind.BINARY], threshold=0.300000012)
    assert above.decide(probs).tolist() == [0, 0]
    at = DecisionRule(kind="binary", classes=CLASSES[TaskKind.BINARY], threshold=float(probs[0, 1]))
    assert at.decide(probs).tolist() == [1, 0]  # >=: exactly at the threshold is positive
    labels = DecisionRule(kind="multilabel", classes=CLASSES[TaskKind.MULTILABEL], thresholds=(0.25, 0.5, 0.8))
    assert labels.decide(torch.tensor([[0.25, 0.5, 0.75]])).tolist() == [[True, True, False]]


def test_default_rule_is_half_or_argmax(kind: TaskKind) -> None:
    task = make_task(kind)
    rule = DecisionRule.default(task)
    expected = {
        TaskKind.BINARY: (0.5, None),
        TaskKind.MULTICLASS: (None, None),
        TaskKind.MULTILABEL: (None, (0.5,) * task.num_classes),
    }[kind]
    assert (rule.kind, rule.classes, rule.metric) == (kind, task.classes, None)
    assert (rule.threshold, rule.thresholds) == expected


def test_default_rule_serves_every_head_of_its_kind() -> None:
    # The rule reads probabilities, which every head of a kind gives in the same (N, C) form.
    for head in ("one_logit", "two_logits", "one_vs_rest"):
        task = Task(kind="binary", classes=CLASSES[TaskKind.BINARY], head=head)
        assert DecisionRule.default(task) == DecisionRule.default(make_task("binary"))


DESCRIPTIONS = [
    pytest.param(
        DecisionRule(
            kind="binary",
            classes=("benign", "malignant"),
            threshold=0.37,
            metric="f1",
            num_samples=114,
            tuned_score=0.9,
            default_score=0.8,
        ),
        "threshold 0.37 on P('malignant'), tuned for f1 on 114 validation items (f1 0.900 vs 0.800 at 0.5)",
        id="binary-tuned",
    ),
    pytest.param(
        DecisionRule(kind="binary", classes=("no", "yes"), threshold=0.5),
        "threshold 0.5 on P('yes') (not tuned)",
        id="binary-default",
    ),
    pytest.param(
        DecisionRule(kind="multiclass", classes=("a", "b", "c"), metric="f1", num_samples=10),
        "argmax over 3 classes",
        id="multiclass",
    ),
    pytest.param(
        DecisionRule(
            kind="multilabel",
            classes=("a", "b", "c"),
            thresholds=(0.2, 0.2, 0.5),
            metric="precision@recall:0.8",
            shared_threshold=0.5,
            shared_labels=("c",),
            num_samples=30,
            tuned_score=0.75,
        ),
        "per-label thresholds 0.2-0.5, tuned for precision@recall:0.8 on 30 validation items (precision 0.750 with "
        "recall >= 0.8, vs 0.5 misses recall >= 0.8); 1 rare labels ('c') use the shared 0.5",
        id="multilabel-constrained-shared",
    ),
    pytest.param(
        DecisionRule(
            kind="multilabel",
            classes=("a", "b"),
            thresholds=(0.2, 0.2),
            metric="precision@recall:0.8",
            num_samples=30,
        ),
        "per-label thresholds 0.2, tuned for precision@recall:0.8 on 30 validation items (no threshold reached "
        "recall >= 0.8 on the validation data)",
        id="multilabel-constraint-missed",
    ),
]


@pytest.mark.parametrize(("rule", "expected"), DESCRIPTIONS)
def test_describe(rule: DecisionRule, expected: str) -> None:
    assert rule.describe() == expected


@pytest.mark.parametrize(("rule", "expected"), DESCRIPTIONS)
def test_to_dict_round_trips_through_json(rule: DecisionRule, expected: str) -> None:
    again = DecisionRule.from_dict(json.loads(json.dumps(rule.to_dict())))
    assert again == rule and again.describe() == expected


BAD_RULES = [
    pytest.param(
        {"kind": "binary", "classes": ("a", "b")},
        r"a binary DecisionRule takes `threshold`, got none. Use `DecisionRule.default\(task\)` or `tune_thresholds`",
        id="binary-without-threshold",
    ),
    pytest.param(
        {"kind": "multiclass", "classes": ("a", "b", "c"), "threshold": 0.5},
        r"a multiclass DecisionRule takes no threshold \(argmax\), got `threshold`. Use `DecisionRule.default",
        id="multiclass-with-threshold",
    ),
    pytest.param(
        {"kind": "multilabel", "classes": ("a", "b", "c"), "threshold": 0.5},
        r"a multilabel DecisionRule takes `thresholds`, got `threshold`",
        id="multilabel-with-one-threshold",
    ),
    pytest.param(
        {"kind": "multilabel", "classes": ("a", "b", "c"), "thresholds": (0.5, 0.5)},
        r"2 thresholds for 3 labels; expected one per label",
        id="multilabel-too-few",
    ),
    pytest.param(
        {"kind": "binary", "classes": ("a", "b"), "threshold": 1.5},
        r"thresholds must lie in \[0, 1\], got 1.5",
        id="out-of-range",
    ),
    pytest.param(
        {"kind": "binary", "classes": ("a", "b"), "threshold": "high"},
        r"thresholds must be numbers in \[0, 1\], got threshold='high'.*Use `DecisionRule.default\(task\)`",
        id="not-a-number",
    ),
    pytest.param(
        {"kind": "binary", "classes": ("a", "b"), "threshold": 0.5, "tuned_score": float("nan")},
        r"tuned_score=nan; expected a finite number or None. Pass None where the metric's constraint fails",
        id="nan-score",
    ),
    pytest.param(
        {"kind": "regression", "classes": ("a", "b")},
        r"kind='regression'; expected binary, multiclass or multilabel",
        id="unknown-kind",
    ),
]


@pytest.mark.parametrize(("fields", "match"), BAD_RULES)
def test_invalid_rules_are_explained(fields: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DecisionRule(**fields)  # type: ignore[arg-type]


def test_unknown_stored_fields_get_a_did_you_mean() -> None:
    data = RULES[TaskKind.BINARY].to_dict() | {"threshhold": 0.4}
    with pytest.raises(ConfigError, match=r"unknown DecisionRule fields 'threshhold' \(did you mean 'threshold'\?\)"):
        DecisionRule.from_dict(data)


def test_probabilities_that_do_not_fit_the_rule_are_refused(kind: TaskKind) -> None:
    num_classes = len(CLASSES[kind])
    match = rf"probs of shape \(4, {num_classes + 1}\) do not fit .* expected \(N, {num_classes}\).*`task.probabilities"
    with pytest.raises(ConfigError, match=match):
        RULES[kind].decide(torch.rand(4, num_classes + 1))
