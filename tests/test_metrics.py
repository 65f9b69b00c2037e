"""labelwise.metrics against scikit-learn on the same inputs (references in tests/_references.py)."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
import torchmetrics.functional.classification as tmf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _factories import make_batch, make_task
from _references import reference_ece, reference_metrics
from labelwise.errors import ConfigError, DataError, LabelError
from labelwise.metrics import (
    brier_score,
    compute_metrics,
    expected_calibration_error,
    headline_metric,
    log_loss,
)
from labelwise.task import Task, TaskKind

# torchmetrics computes in float32: its values agree with sklearn's float64 ones to float32 precision.
REL, ABS = 1e-5, 1e-6


def _inputs(kind: TaskKind, *, seed: int = 0, n: int = 64) -> tuple[Task, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probabilities, targets and 0.5/argmax decisions; single-label rows 5-9 abstain (every class stays decided)."""
    task, logits, targets = make_batch(kind, seed=seed, n=n)
    probs = task.probabilities(logits)
    if kind is TaskKind.MULTILABEL:
        return task, probs, targets, probs >= 0.5
    decisions = probs.argmax(dim=1)
    decisions[5:10] = -1
    return task, probs, targets, decisions


def _assert_matches(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert sorted(ours) == sorted(reference)
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value, rel=REL, abs=ABS), name


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), n=st.integers(12, 120))
def test_metrics_match_sklearn(kind: TaskKind, seed: int, n: int) -> None:
    task, probs, targets, decisions = _inputs(kind, seed=seed, n=n)
    ours = compute_metrics(probs, targets, task, decisions=decisions)
    _assert_matches(ours, reference_metrics(kind, probs, targets, decisions, task.classes))
    assert all(type(value) is float for value in ours.values())
    assert headline_metric(task) in ours


# torchmetrics, a second implementation beside the scikit-learn the module and the references call, on the metrics
# whose definitions the two libraries share (float32 inside torchmetrics).
_TORCHMETRICS = {
    TaskKind.BINARY: {
        "accuracy": lambda p, y, d: tmf.binary_accuracy(d, y),
        "f1": lambda p, y, d: tmf.binary_f1_score(d, y),
        "roc_auc": lambda p, y, d: tmf.binary_auroc(p[:, 1].contiguous(), y),
        "pr_auc": lambda p, y, d: tmf.binary_average_precision(p[:, 1].contiguous(), y),
        "ece": lambda p, y, d: tmf.binary_calibration_error(p[:, 1].contiguous(), y, n_bins=15),
    },
    TaskKind.MULTICLASS: {
        "accuracy": lambda p, y, d: tmf.multiclass_accuracy(d, y, num_classes=p.shape[1], average="micro"),
        "ece": lambda p, y, d: tmf.multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=15),
    },
    TaskKind.MULTILABEL: {
        "micro_f1": lambda p, y, d: tmf.multilabel_f1_score(d.long(), y, num_labels=p.shape[1], average="micro"),
        "hamming_loss": lambda p, y, d: tmf.multilabel_hamming_distance(d.long(), y, num_labels=p.shape[1]),
        "subset_accuracy": lambda p, y, d: tmf.multilabel_exact_match(d.long(), y, num_labels=p.shape[1]),
        "ece": lambda p, y, d: tmf.binary_calibration_error(p.flatten(), y.flatten(), n_bins=15),
    },
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_torchmetrics(kind: TaskKind, seed: int) -> None:
    task, probs, targets, decisions = _inputs(kind, seed=seed, n=200)
    if kind is not TaskKind.MULTILABEL:
        decisions = probs.argmax(dim=1)  # torchmetrics has no abstention
    ours = compute_metrics(probs, targets, task, decisions=decisions)
    for name, reference in _TORCHMETRICS[kind].items():
        assert ours[name] == pytest.approx(float(reference(probs, targets.long(), decisions)), abs=1e-5), name


def test_binary_two_logit_probs_score_the_same() -> None:
    task, probs, targets, decisions = _inputs(TaskKind.BINARY)
    two = Task(kind=TaskKind.BINARY, classes=task.classes, head="two_logits")
    ours = compute_metrics(probs, targets.long(), two, decisions=decisions)
    _assert_matches(ours, reference_metrics("binary", probs, targets, decisions, task.classes))


def test_multilabel_edge_labels_follow_the_stated_definitions() -> None:
    task, probs, targets, decisions = _inputs(TaskKind.MULTILABEL)
    targets[:, 1] = 0.0  # 'haze': no positives (and never predicted below)
    decisions[:, 1] = False
    targets[:, 2] = 1.0  # 'road': every item positive
    ours = compute_metrics(probs, targets, task, decisions=decisions)
    _assert_matches(ours, reference_metrics("multilabel", probs, targets, decisions, task.classes))
    y, p = targets.numpy(), probs.numpy()
    assert ours["mAP"] == pytest.approx(np.mean([skm.average_precision_score(y[:, j], p[:, j]) for j in (0, 2, 3)]))
    assert ours["macro_roc_auc"] == pytest.approx(np.mean([skm.roc_auc_score(y[:, j], p[:, j]) for j in (0, 3)]))
    # sklearn's default counts 'haze' (nothing to find, nothing found) as F1 = 0; we leave it out.
    assert ours["macro_f1"] > skm.f1_score(y, decisions.numpy(), average="macro", zero_division=0)


def test_multilabel_with_no_positives_leaves_out_ranking_metrics() -> None:
    task, probs, _, _ = _inputs(TaskKind.MULTILABEL)
    targets = torch.zeros_like(probs)
    ours = compute_metrics(probs, targets, task, decisions=torch.zeros_like(probs, dtype=torch.bool))
    assert "mAP" not in ours and "macro_roc_auc" not in ours and "macro_f1" not in ours
    assert ours["subset_accuracy"] == 1.0 and ours["empty_prediction_rate"] == 1.0


def test_single_class_targets_leave_out_auc() -> None:
    task, probs, _, decisions = _inputs(TaskKind.BINARY)
    targets = torch.zeros(len(probs))
    decisions[:2] = torch.tensor([0, 1])
    ours = compute_metrics(probs, targets, task, decisions=decisions)
    assert "roc_auc" not in ours and "pr_auc" not in ours
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(targets[decisions >= 0], decisions[decisions >= 0]))


def test_multiclass_reports_recall_only_for_classes_present() -> None:
    task, probs, targets, decisions = _inputs(TaskKind.MULTICLASS)
    targets[targets == 2] = 0  # 'dog' no longer occurs in the targets, only (maybe) in the decisions
    ours = compute_metrics(probs, targets, task, decisions=decisions)
    assert "recall/dog" not in ours and "recall/bird" in ours
    _assert_matches(ours, reference_metrics("multiclass", probs, targets, decisions, task.classes))


@pytest.mark.parametrize("kind", [TaskKind.BINARY, TaskKind.MULTICLASS], ids=str)
def test_all_abstained_reports_coverage_and_probability_metrics(kind: TaskKind) -> None:
    task, probs, targets, decisions = _inputs(kind)
    ours = compute_metrics(probs, targets, task, decisions=torch.full_like(decisions, -1))
    assert ours["coverage"] == 0.0
    assert "accuracy" not in ours and "log_loss" in ours


def test_calibration_helpers_match_references(kind: TaskKind) -> None:
    task, probs, targets, decisions = _inputs(kind)
    reference = reference_metrics(kind, probs, targets, decisions, task.classes)
    assert expected_calibration_error(probs, targets, task) == pytest.approx(reference["ece"], rel=REL, abs=ABS)
    # Both in float64; the multiclass reference renormalises float32 softmax rows (off by <= 1e-7) for sklearn.
    assert brier_score(probs, targets, task) == pytest.approx(reference["brier"], rel=1e-6)
    assert log_loss(probs, targets, task) == pytest.approx(reference["log_loss"], rel=1e-6)


def test_ece_bins_change_the_value_and_are_checked() -> None:
    task, probs, targets, _ = _inputs(TaskKind.MULTICLASS)
    p, y = probs.double().numpy(), targets.numpy()
    hits = (p.argmax(axis=1) == y).astype(float)
    assert expected_calibration_error(probs, targets, task, n_bins=5) == pytest.approx(
        reference_ece(p.max(axis=1), hits, n_bins=5), rel=REL, abs=ABS
    )
    with pytest.raises(ConfigError, match=r"n_bins=0; expected a positive integer"):
        expected_calibration_error(probs, targets, task, n_bins=0)


def test_log_loss_clips_certain_mistakes_like_sklearn() -> None:
    task = make_task("multiclass")
    probs = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    targets = torch.tensor([1, 1])
    assert log_loss(probs, targets, task) == pytest.approx(skm.log_loss([1, 1], probs.numpy(), labels=range(4)))


# The headline is the score the docs promise per kind, identified by its value: sklearn's ROC-AUC of P(positive),
# macro F1 of the argmax decisions, macro average precision over the labels. On these inputs every other metric
# `compute_metrics` reports differs from the named one (checked below), so the value pins the name down.
HEADLINE_REFERENCES = {
    TaskKind.BINARY: lambda y, p, d: skm.roc_auc_score(y, p[:, 1]),
    TaskKind.MULTICLASS: lambda y, p, d: skm.f1_score(y, d, average="macro"),
    TaskKind.MULTILABEL: lambda y, p, d: skm.average_precision_score(y, p, average="macro"),
}


def test_headline_metric_is_the_documented_score(kind: TaskKind) -> None:
    task, probs, targets, _ = _inputs(kind)
    decisions = probs >= 0.5 if kind is TaskKind.MULTILABEL else probs.argmax(dim=1)
    ours = compute_metrics(probs, targets, task, decisions=decisions)
    expected = HEADLINE_REFERENCES[kind](targets.long().numpy(), probs.double().numpy(), decisions.long().numpy())
    assert ours[headline_metric(task)] == pytest.approx(expected, rel=REL, abs=ABS)
    others = [name for name, value in ours.items() if name != headline_metric(task)]
    assert all(ours[name] != pytest.approx(expected, rel=REL, abs=ABS) for name in others), others


@pytest.mark.parametrize("kind", [TaskKind.BINARY, TaskKind.MULTICLASS], ids=str)
def test_headline_metric_exposes_a_model_that_predicts_the_majority(kind: TaskKind) -> None:
    """Why it leads the summary: on imbalanced data a collapsed model keeps a high accuracy, not a high headline."""
    task = make_task(kind)
    targets = torch.zeros(100, dtype=torch.long)
    targets[90:] = torch.arange(10) % (task.num_classes - 1) + 1  # 90 % class 0, the rest spread over the others
    probs = torch.full((100, task.num_classes), 0.1 / (task.num_classes - 1))
    probs[:, 0] = 0.9  # the same answer for every item: the majority, with its frequency as probability
    ours = compute_metrics(probs, targets.to(task.target_dtype), task, decisions=torch.zeros(100, dtype=torch.long))
    assert ours["accuracy"] == pytest.approx(0.9)  # hand count: 90 of 100 right
    # By hand: constant scores rank nothing (AUC 0.5); macro F1 averages 2*0.9/1.9 for class 0 with 0 for the rest.
    expected = 0.5 if kind is TaskKind.BINARY else (2 * 0.9 / 1.9) / task.num_classes
    assert ours[headline_metric(task)] == pytest.approx(expected, rel=REL, abs=ABS)


# -- errors ------------------------------------------------------------------------------------------
def test_logits_instead_of_probs_are_rejected(kind: TaskKind) -> None:
    task, probs, targets, decisions = _inputs(kind)
    probs = probs * 3 - 1
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\].*rows .*look like logits: pass `task.probabilities"):
        compute_metrics(probs, targets, task, decisions=decisions)


def test_probs_of_the_wrong_width_or_dtype_are_rejected() -> None:
    task, probs, targets, decisions = _inputs(TaskKind.BINARY)
    with pytest.raises(ConfigError, match=r"shape \(64,\) .*expected \(N, 2\), one column per class \(binary too\)"):
        compute_metrics(probs[:, 1], targets, task, decisions=decisions)
    with pytest.raises(ConfigError, match=r"float tensor, got Tensor of dtype torch.int64. Pass `task.probabilities"):
        compute_metrics(probs.long(), targets, task, decisions=decisions)


def test_empty_probs_are_rejected() -> None:
    task = make_task("multiclass")
    with pytest.raises(DataError, match=r"no items to score .*expected at least one"):
        log_loss(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), task)


def test_targets_that_do_not_fit_are_rejected(kind: TaskKind) -> None:
    task, probs, targets, decisions = _inputs(kind)
    with pytest.raises(LabelError, match=r"targets of shape .*expected \(64,?.*Build targets with `task.encode"):
        compute_metrics(probs, targets[:10], task, decisions=decisions)
    bad = targets.clone()
    bad[3] = 7
    with pytest.raises(LabelError, match=r"integers in \[0, \d\]; row 3 hold.*task.encode"):
        compute_metrics(probs, bad, task, decisions=decisions)


def test_decisions_that_do_not_fit_are_rejected(kind: TaskKind) -> None:
    task, probs, targets, decisions = _inputs(kind)
    with pytest.raises(ConfigError, match=r"decisions of shape .*expected \(64.*Make them with `rule.decide"):
        compute_metrics(probs, targets, task, decisions=decisions[:3])
    with pytest.raises(ConfigError, match=r"integers \(or bools\) in .*got dtype torch.float32"):
        compute_metrics(probs, targets, task, decisions=decisions.float())
