"""labelwise.evaluation: what `evaluate` adds to `compute_metrics`, against sklearn and hand counts.

Policies are fitted with the public `fit_policy`; every expected value is computed here from the decisions,
sets and unknown scores the policy produced, with scikit-learn, pytorch-ood or numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

from _factories import make_batch
from _references import reference_aurc, reference_metrics, sklearn_ood_metrics
from labelwise.decide import DecideConfig, Decisions, Policy, fit_policy
from labelwise.errors import ConfigError
from labelwise.evaluation import evaluation_metrics
from labelwise.task import Task, TaskKind

# torchmetrics computes in float32: its values agree with sklearn's float64 ones to float32 precision.
REL, ABS = 1e-5, 1e-6
SINGLE_LABEL = [pytest.param(TaskKind.BINARY, id="binary"), pytest.param(TaskKind.MULTICLASS, id="multiclass")]


def _fitted(kind: TaskKind, config: DecideConfig) -> tuple[Task, torch.Tensor, torch.Tensor, Policy]:
    """A Task, logits and targets of 96 items, and a policy fitted on them."""
    task, logits, targets = make_batch(kind, seed=1, n=96)
    return task, logits, targets, fit_policy(logits, targets, task, config)


def _assert_close(ours: dict[str, float], expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=REL, abs=ABS), name


def test_plain_policy_reports_compute_metrics_and_the_uncalibrated_calibration(kind: TaskKind) -> None:
    task, logits, targets, policy = _fitted(kind, DecideConfig())
    out = policy.decide(logits, task)
    raw_probs = task.probabilities(logits * 3)  # stands for the probabilities before temperature scaling
    known = torch.ones(len(targets), dtype=torch.bool)
    ours = evaluation_metrics(out, raw_probs, targets=targets, known=known, task=task, policy=policy)
    assert out.probs is not None
    expected = reference_metrics(kind, out.probs, targets, out.decisions, task.classes)
    before = reference_metrics(kind, raw_probs, targets, out.decisions, task.classes)
    expected |= {"ece_uncalibrated": before["ece"], "brier_uncalibrated": before["brier"]}
    assert sorted(ours) == sorted(expected)
    _assert_close(ours, expected)
    assert ours["ece"] != pytest.approx(ours["ece_uncalibrated"])  # the two inputs really differ


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        pytest.param(TaskKind.BINARY, DecideConfig(conformal=0.8), id="binary-conformal"),
        pytest.param(TaskKind.MULTICLASS, DecideConfig(top_k=2), id="multiclass-top-k"),
        pytest.param(TaskKind.MULTILABEL, DecideConfig(conformal=0.8), id="multilabel-conformal"),
    ],
)
def test_prediction_sets_are_scored_by_hand(kind: TaskKind, config: DecideConfig) -> None:
    task, logits, targets, policy = _fitted(kind, config)
    out = policy.decide(logits, task)
    known = torch.ones(len(targets), dtype=torch.bool)
    ours = evaluation_metrics(out, out.probs, targets=targets, known=known, task=task, policy=policy)  # type: ignore[arg-type]
    assert out.sets is not None
    sets = out.sets.numpy()
    if kind is TaskKind.MULTILABEL:  # the set must hold every true label
        covered = (sets >= targets.numpy().astype(bool)).all(axis=1)
    else:
        covered = sets[np.arange(len(sets)), targets.long().numpy()]
    sizes = sets.sum(axis=1)
    # exact: ratios of counts of at most 96 items, in float64 on both sides
    assert ours["set_coverage"] == pytest.approx(covered.mean(), abs=1e-12)
    assert ours["mean_set_size"] == pytest.approx(sizes.mean(), abs=1e-12)
    assert ours["empty_set_rate"] == pytest.approx((sizes == 0).mean(), abs=1e-12)
    assert 0 < covered.mean() < 1 or kind is TaskKind.MULTICLASS  # not a trivially full or empty set rule


@pytest.mark.parametrize("kind", SINGLE_LABEL)
def test_abstaining_policy_on_known_and_unknown_items(kind: TaskKind) -> None:
    task, logits, all_targets, policy = _fitted(kind, DecideConfig(allow_none="max_prob", coverage=0.8))
    known = torch.ones(len(all_targets), dtype=torch.bool)
    known[::4] = False  # a quarter of the items belong to classes the model never saw
    targets = all_targets[known]
    out = policy.decide(logits, task)
    assert out.probs is not None and out.unknown_score is not None
    ours = evaluation_metrics(out, out.probs, targets=targets, known=known, task=task, policy=policy)

    # Classification metrics: the known items, with the decisions the rule made before abstaining ("coverage" is
    # then the fraction of all items answered, checked below).
    before = policy.rule.decide(out.probs[known])
    assert (before >= 0).all()
    classification = reference_metrics(kind, out.probs[known], targets, before, task.classes)
    _assert_close(ours, {name: value for name, value in classification.items() if name != "coverage"})

    abstained = out.abstained.numpy()
    correct = np.zeros(len(known), dtype=bool)
    correct[known.numpy()] = (before == targets.long()).numpy()
    scores, is_unknown = out.unknown_score.numpy(), ~known.numpy()
    exact = {  # ratios of counts of at most 96 items
        "coverage": 1 - abstained.mean(),
        "selective_accuracy": correct[~abstained].mean(),
        "unknown_items": float(is_unknown.sum()),
        "unknown_rejected": abstained[is_unknown].mean(),
    }
    for name, value in exact.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    # The detector: sklearn's ROC (float64) against labelwise's (float32 inside).
    _assert_close(ours, sklearn_ood_metrics(scores, is_unknown))
    assert ours["aurc"] == pytest.approx(reference_aurc(out.unknown_score, torch.from_numpy(correct)), rel=1e-9)
    # Risk-coverage rows: accept the lowest-scored ceil(C * N) items (the scores are distinct), score their decisions.
    rows = {float(name.split("=")[1]): value for name, value in ours.items() if name.startswith("selective_accuracy/")}
    assert 1.0 in rows and len(rows) > 1
    order = np.argsort(scores, kind="stable")
    for target, value in rows.items():
        accepted = order[: math.ceil(target * len(scores) - 1e-9)]
        assert value == pytest.approx(correct[accepted].mean(), abs=1e-12), target


@pytest.mark.parametrize("kind", SINGLE_LABEL)
def test_only_unknown_items_have_nothing_to_classify(kind: TaskKind) -> None:
    task, logits, all_targets, policy = _fitted(kind, DecideConfig(allow_none="max_prob", coverage=0.8))
    out = policy.decide(logits, task)
    known = torch.zeros(len(all_targets), dtype=torch.bool)
    ours = evaluation_metrics(out, out.probs, targets=all_targets[known], known=known, task=task, policy=policy)  # type: ignore[arg-type]
    assert "accuracy" not in ours and "ece" not in ours and "unknown_auroc" not in ours  # one class only: no AUROC
    assert ours["unknown_items"] == len(known)
    assert ours["unknown_rejected"] == pytest.approx(out.abstained.double().mean().item(), abs=1e-12)
    assert ours["coverage"] == pytest.approx(1 - out.abstained.double().mean().item(), abs=1e-12)
    assert ours.get("selective_accuracy", 0.0) == 0.0  # nothing answered can be right


def test_unknown_items_without_a_reject_rule_are_not_scored_as_such() -> None:
    task, logits, targets, policy = _fitted(TaskKind.MULTICLASS, DecideConfig())
    out = policy.decide(logits, task)
    known = torch.ones(len(targets), dtype=torch.bool)
    known[:8] = False
    ours = evaluation_metrics(out, out.probs, targets=targets[known], known=known, task=task, policy=policy)  # type: ignore[arg-type]
    assert not {"selective_accuracy", "unknown_items", "unknown_auroc", "aurc"} & set(ours)
    assert ours["coverage"] == 1.0  # compute_metrics' own: every item got a decision
    assert ours["accuracy"] == pytest.approx(
        skm.accuracy_score(targets[known].numpy(), out.decisions[known].numpy()), abs=1e-6
    )  # float32 inside torchmetrics


def test_decisions_without_probabilities_are_refused() -> None:
    task, logits, targets, policy = _fitted(TaskKind.MULTICLASS, DecideConfig())
    out = policy.decide(logits, task)
    ranked = Decisions(None, out.decisions, out.abstained, None, None)
    known = torch.ones(len(targets), dtype=torch.bool)
    with pytest.raises(ConfigError, match=r"hold no \(N, C\) probabilities .*score them with `Classifier.metrics`"):
        evaluation_metrics(ranked, out.probs, targets=targets, known=known, task=task, policy=policy)  # type: ignore[arg-type]
