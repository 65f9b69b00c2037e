"""Evaluation metrics for the three Task kinds, computed with scikit-learn's reference implementations.

`compute_metrics` returns plain Python floats keyed by name (``tests/test_metrics.py`` checks every one against
torchmetrics and against definitions written out). scikit-learn rather than torchmetrics because torchmetrics
imports transformers, torchvision and scipy.signal when it is imported (torchmetrics#2242): 2.4-3.6 s on 2 cores,
more than training a 1,000-row table takes, where scikit-learn's metrics cost 0.7 s and cross-fitting imports
scikit-learn for its folds anyway. Where the libraries disagree on an edge case we pick one definition and state
it here:

- Decision metrics (accuracy, precision, recall, F1, ...) of binary and multiclass tasks are computed on the
  items that got a decision (decision ``-1`` = abstained); ``coverage`` is the fraction that got one.
  Probability metrics (AUC, AP, log-loss, Brier, ECE) always use every item.
- A metric that is undefined on the data is left out of the dict, never reported as 0 or NaN: ROC-AUC and AP
  when the targets hold one class, ``recall/<class>`` for a class with no items, every decision metric when
  all items abstained.
- Macro averages run over the classes/labels that have something to score: multiclass and multilabel macro
  F1 over classes that occur in the targets or the decisions (sklearn ``zero_division=np.nan``; torchmetrics'
  multilabel macro would count such labels as 0); balanced accuracy over classes present in the targets
  (sklearn); multilabel ``mAP`` over labels with at least one positive, ``macro_roc_auc`` over labels with
  both positives and negatives (torchmetrics and sklearn both score the rest as NaN or 0, with a warning).
- Calibration: ``ece`` is the L1 calibration error with 15 equal-width bins, as torchmetrics bins it: of P(positive) for
  binary, of the top-class probability for multiclass, and of every (item, label) probability pooled for
  multilabel. ``brier`` follows sklearn's ``brier_score_loss``: mean squared error of P(positive) for binary,
  mean over items of the squared distance to the one-hot target for multiclass, and for multilabel the mean
  over labels of each label's binary Brier score. ``log_loss`` clips probabilities to ``[eps, 1 - eps]``
  (``eps`` of the probs' dtype) as sklearn does; multilabel log-loss is the mean of the per-label binary ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sklearn.metrics as skm
import torch

from labelwise._value_checks import check_decisions, check_probs, check_targets
from labelwise.errors import ConfigError
from labelwise.task import Task, TaskKind

__all__ = [
    "ECE_BINS",
    "brier_score",
    "check_decisions",
    "check_probs",
    "check_targets",
    "compute_metrics",
    "expected_calibration_error",
    "headline_metric",
    "log_loss",
]

# Guo et al. 2017 ("On Calibration of Modern Neural Networks") report ECE with 15 bins; torchmetrics' default.
ECE_BINS = 15

# Threshold-free or argmax-based, and low for a model that predicts the majority for everything (the collapse
# the seed articles hit), which accuracy would hide on imbalanced data.
_HEADLINE = {TaskKind.BINARY: "roc_auc", TaskKind.MULTICLASS: "macro_f1", TaskKind.MULTILABEL: "mAP"}


def headline_metric(task: Task) -> str:
    """The one metric a summary leads with: binary ``roc_auc``, multiclass ``macro_f1``, multilabel ``mAP``.

    Example:
        >>> headline_metric(Task(kind="multiclass", classes=("a", "b", "c")))
        'macro_f1'
    """
    return _HEADLINE[task.kind]


# -- input checks ------------------------------------------------------------------------------------
# One key per class reads well for tens of classes; for thousands it buries the summary, which balanced_accuracy
# and the ranking metrics' head / torso / tail recalls (`labelwise.ranking`) give instead.
PER_CLASS_UP_TO = 100


# -- metrics -----------------------------------------------------------------------------------------
def compute_metrics(
    probs: torch.Tensor, targets: torch.Tensor, task: Task, *, decisions: torch.Tensor
) -> dict[str, float]:
    """All metrics of this Task's kind, as plain floats (definitions in the module docstring).

    Args:
        probs: ``(N, num_classes)`` float probabilities from `Task.probabilities` (binary: both columns).
        targets: ``task.encode(labels)``: ``(N,)`` class indices, or ``(N, C)`` 0/1 for multilabel.
        task: the Task.
        decisions: ``(N,)`` long class indices (``-1`` = abstained), or ``(N, C)`` bool for multilabel.

    Returns:
        binary: coverage, accuracy, balanced_accuracy, precision, recall, f1, roc_auc, pr_auc, log_loss,
        brier, ece; multiclass: coverage, accuracy, macro_f1, balanced_accuracy, ``recall/<class>`` (up to
        `PER_CLASS_UP_TO` classes), log_loss, brier, ece; multilabel: micro_f1, macro_f1, hamming_loss,
        subset_accuracy, mAP, macro_roc_auc, empty_prediction_rate, log_loss, brier, ece.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
        >>> metrics = compute_metrics(probs, task.encode(["no", "yes", "yes"]), task,
        ...                           decisions=torch.tensor([0, 1, 0]))
        >>> round(metrics["accuracy"], 4), metrics["roc_auc"], metrics["coverage"]
        (0.6667, 1.0, 1.0)
    """
    probs, targets = _checked(probs, targets, task)
    decisions = check_decisions(decisions, kind=task.kind, num_classes=task.num_classes, num_samples=len(probs))
    metrics = _DECISION_METRICS[task.kind](decisions, targets, task)
    metrics.update(_PROBABILITY_METRICS[task.kind](probs, targets))
    metrics["log_loss"] = _log_loss(probs, targets, task.kind)
    metrics["brier"] = _brier(probs, targets, task.kind)
    metrics["ece"] = _ece(probs, targets, task.kind, n_bins=ECE_BINS)
    return metrics


def expected_calibration_error(
    probs: torch.Tensor, targets: torch.Tensor, task: Task, *, n_bins: int = ECE_BINS
) -> float:
    """Expected calibration error (L1, equal-width bins): 0 for perfectly calibrated probabilities.

    Binary: of P(positive); multiclass: of the top-class probability; multilabel: of all labels pooled.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> probs = torch.tensor([[0.2, 0.8], [0.2, 0.8]])
        >>> round(expected_calibration_error(probs, task.encode(["no", "yes"]), task), 4)
        0.3
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"n_bins={n_bins!r}; expected a positive integer such as {ECE_BINS}.")
    probs, targets = _checked(probs, targets, task)
    return _ece(probs, targets, task.kind, n_bins=n_bins)


def brier_score(probs: torch.Tensor, targets: torch.Tensor, task: Task) -> float:
    """Brier score as sklearn's ``brier_score_loss`` defines it per kind (see the module docstring).

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> round(brier_score(torch.tensor([[0.2, 0.8], [0.2, 0.8]]), task.encode(["no", "yes"]), task), 4)
        0.34
    """
    probs, targets = _checked(probs, targets, task)
    return _brier(probs, targets, task.kind)


def log_loss(probs: torch.Tensor, targets: torch.Tensor, task: Task) -> float:
    """Mean negative log-likelihood of the targets, probabilities clipped to ``[eps, 1 - eps]`` as sklearn does.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> round(log_loss(torch.tensor([[0.5, 0.5]]), task.encode(["yes"]), task), 4)
        0.6931
    """
    probs, targets = _checked(probs, targets, task)
    return _log_loss(probs, targets, task.kind)


def _checked(probs: torch.Tensor, targets: torch.Tensor, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    probs = check_probs(probs, kind=task.kind, num_classes=task.num_classes)
    targets = check_targets(targets, kind=task.kind, num_classes=task.num_classes, num_samples=len(probs))
    return probs, targets.to(probs.device)


def _numpy(*tensors: torch.Tensor) -> tuple[np.ndarray, ...]:
    return tuple(t.detach().cpu().numpy() for t in tensors)


def _binary_decision_metrics(decisions: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, float]:
    decided = decisions >= 0
    out = {"coverage": decided.double().mean().item()}
    if not decided.any():
        return out
    preds, target = _numpy(decisions[decided], targets[decided])
    recalls = skm.recall_score(target, preds, labels=[0, 1], average=None, zero_division=np.nan)
    out |= {
        "accuracy": float(skm.accuracy_score(target, preds)),
        "precision": float(skm.precision_score(target, preds, zero_division=0.0)),
        "recall": float(skm.recall_score(target, preds, zero_division=0.0)),
        "f1": float(skm.f1_score(target, preds, zero_division=0.0)),
        "balanced_accuracy": float(np.nanmean(recalls)),
    }
    return out


def _multiclass_decision_metrics(decisions: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, float]:
    decided = decisions >= 0
    out = {"coverage": decided.double().mean().item()}
    if not decided.any():
        return out
    preds, target = _numpy(decisions[decided], targets[decided])
    # Per class over all of them, NaN where a class has no items: its recall is undefined, not 0.
    recalls = skm.recall_score(target, preds, labels=np.arange(task.num_classes), average=None, zero_division=np.nan)
    present = np.flatnonzero(~np.isnan(recalls))
    out["accuracy"] = float(skm.accuracy_score(target, preds))
    out["macro_f1"] = float(skm.f1_score(target, preds, average="macro", zero_division=np.nan))
    out["balanced_accuracy"] = float(recalls[present].mean())
    if task.num_classes <= PER_CLASS_UP_TO:
        out.update({f"recall/{task.classes[i]}": float(recalls[i]) for i in present})
    return out


def _multilabel_decision_metrics(decisions: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, float]:
    preds, target = _numpy(decisions.long(), targets.long())
    f1 = skm.f1_score(target, preds, average=None, zero_division=np.nan)
    out = {
        "micro_f1": float(skm.f1_score(target, preds, average="micro", zero_division=0.0)),
        "hamming_loss": float(skm.hamming_loss(target, preds)),
        "subset_accuracy": float(skm.accuracy_score(target, preds)),
        "empty_prediction_rate": float((~preds.any(axis=1)).mean()),
    }
    if not np.isnan(f1).all():
        out["macro_f1"] = float(np.nanmean(f1))
    return out


def _binary_probability_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    if targets.min() == targets.max():
        return {}
    positive, target = _numpy(probs[:, 1].double(), targets)
    return {
        "roc_auc": float(skm.roc_auc_score(target, positive)),
        "pr_auc": float(skm.average_precision_score(target, positive)),
    }


def _multiclass_probability_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    return {}


def _multilabel_probability_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    scores, target = _numpy(probs.double(), targets.long())
    positives = target.sum(axis=0)
    out = {}
    has_positive = np.flatnonzero(positives > 0)
    if len(has_positive):
        ap = skm.average_precision_score(target[:, has_positive], scores[:, has_positive], average=None)
        out["mAP"] = float(np.mean(ap))
    both = np.flatnonzero((positives > 0) & (positives < len(target)))
    if len(both):
        auc = skm.roc_auc_score(target[:, both], scores[:, both], average=None)
        out["macro_roc_auc"] = float(np.mean(auc))
    return out


_Metrics = Callable[[torch.Tensor, torch.Tensor, Task], dict[str, float]]
_DECISION_METRICS: dict[TaskKind, _Metrics] = {
    TaskKind.BINARY: _binary_decision_metrics,
    TaskKind.MULTICLASS: _multiclass_decision_metrics,
    TaskKind.MULTILABEL: _multilabel_decision_metrics,
}
_PROBABILITY_METRICS: dict[TaskKind, Callable[[torch.Tensor, torch.Tensor], dict[str, float]]] = {
    TaskKind.BINARY: _binary_probability_metrics,
    TaskKind.MULTICLASS: _multiclass_probability_metrics,
    TaskKind.MULTILABEL: _multilabel_probability_metrics,
}


def _ece(probs: torch.Tensor, targets: torch.Tensor, kind: TaskKind, *, n_bins: int) -> float:
    probs = probs.double()
    if kind is TaskKind.MULTICLASS:
        confidences, predicted = probs.max(dim=1)
        hits = (predicted == targets).double()
    else:
        confidences = (probs[:, 1] if kind is TaskKind.BINARY else probs.flatten()).contiguous()
        hits = targets.flatten().double()
    # torchmetrics' bins: right-closed on [0, 1] in n_bins equal steps, a probability of exactly 1 in a bin of its own
    bins = torch.bucketize(confidences, torch.linspace(0, 1, n_bins + 1, dtype=torch.float64), right=True) - 1
    counts = torch.bincount(bins, minlength=n_bins + 1).double()
    gap = torch.bincount(bins, weights=confidences - hits, minlength=n_bins + 1)
    return (gap.abs().sum() / counts.sum()).item()


def _brier(probs: torch.Tensor, targets: torch.Tensor, kind: TaskKind) -> float:
    if kind is TaskKind.MULTICLASS:
        onehot = torch.nn.functional.one_hot(targets, probs.shape[1]).to(torch.float64)
        return ((probs.double() - onehot) ** 2).sum(dim=1).mean().item()
    positive = probs[:, 1] if kind is TaskKind.BINARY else probs
    return ((positive.double() - targets.double()) ** 2).mean().item()


def _log_loss(probs: torch.Tensor, targets: torch.Tensor, kind: TaskKind) -> float:
    eps = torch.finfo(probs.dtype).eps
    clipped = probs.double().clamp(eps, 1 - eps)
    if kind is TaskKind.MULTILABEL:
        likelihood = torch.where(targets.bool(), clipped, 1 - clipped)
    else:
        likelihood = clipped.gather(1, targets[:, None])
    return -likelihood.log().mean().item()
