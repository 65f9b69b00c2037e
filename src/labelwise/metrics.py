"""Evaluation metrics for the three Task kinds, computed with torchmetrics' functional layer.

`compute_metrics` returns plain Python floats keyed by name. Each value equals scikit-learn's on the same
inputs (``tests/test_metrics.py`` checks every one); where the two libraries disagree on an edge case we
pick one definition and state it here:

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
- Calibration: ``ece`` is torchmetrics' L1 calibration error with 15 equal-width bins: of P(positive) for
  binary, of the top-class probability for multiclass, and of every (item, label) probability pooled for
  multilabel. ``brier`` follows sklearn's ``brier_score_loss``: mean squared error of P(positive) for binary,
  mean over items of the squared distance to the one-hot target for multiclass, and for multilabel the mean
  over labels of each label's binary Brier score. ``log_loss`` clips probabilities to ``[eps, 1 - eps]``
  (``eps`` of the probs' dtype) as sklearn does; multilabel log-loss is the mean of the per-label binary ones.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchmetrics.functional.classification as tmf

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


def _binary_decision_metrics(decisions: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, float]:
    decided = decisions >= 0
    out = {"coverage": decided.double().mean().item()}
    if not decided.any():
        return out
    preds, target = decisions[decided], targets[decided]
    scores = {
        "accuracy": tmf.binary_accuracy(preds, target, validate_args=False),
        "precision": tmf.binary_precision(preds, target, validate_args=False),
        "recall": tmf.binary_recall(preds, target, validate_args=False),
        "f1": tmf.binary_f1_score(preds, target, validate_args=False),
    }
    recalls = tmf.multiclass_recall(preds, target, num_classes=2, average="none", validate_args=False)
    out.update({name: float(value) for name, value in scores.items()})
    out["balanced_accuracy"] = _mean_where(recalls, torch.bincount(target, minlength=2) > 0)
    return out


def _multiclass_decision_metrics(decisions: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, float]:
    decided = decisions >= 0
    out = {"coverage": decided.double().mean().item()}
    if not decided.any():
        return out
    preds, target, num_classes = decisions[decided], targets[decided], task.num_classes
    present = torch.bincount(target, minlength=num_classes) > 0
    recalls = tmf.multiclass_recall(preds, target, num_classes=num_classes, average="none", validate_args=False)
    out["accuracy"] = float(
        tmf.multiclass_accuracy(preds, target, num_classes=num_classes, average="micro", validate_args=False)
    )
    out["macro_f1"] = float(
        tmf.multiclass_f1_score(preds, target, num_classes=num_classes, average="macro", validate_args=False)
    )
    out["balanced_accuracy"] = _mean_where(recalls, present)
    if num_classes <= PER_CLASS_UP_TO:
        out.update({f"recall/{task.classes[i]}": float(recalls[i]) for i in present.nonzero().flatten().tolist()})
    return out


def _multilabel_decision_metrics(decisions: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, float]:
    num_labels = task.num_classes
    f1 = tmf.multilabel_f1_score(decisions, targets, num_labels=num_labels, average="none", validate_args=False)
    scored = (decisions.bool() | targets.bool()).any(dim=0)
    out = {
        "micro_f1": float(
            tmf.multilabel_f1_score(decisions, targets, num_labels=num_labels, average="micro", validate_args=False)
        ),
        "hamming_loss": float(
            tmf.multilabel_hamming_distance(
                decisions, targets, num_labels=num_labels, average="micro", validate_args=False
            )
        ),
        "subset_accuracy": float(
            tmf.multilabel_exact_match(decisions, targets, num_labels=num_labels, validate_args=False)
        ),
        "empty_prediction_rate": (~decisions.bool().any(dim=1)).double().mean().item(),
    }
    if scored.any():
        out["macro_f1"] = _mean_where(f1, scored)
    return out


def _binary_probability_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    if targets.min() == targets.max():
        return {}
    positive = probs[:, 1].contiguous()
    return {
        "roc_auc": float(tmf.binary_auroc(positive, targets, validate_args=False)),
        "pr_auc": float(tmf.binary_average_precision(positive, targets, validate_args=False)),
    }


def _multiclass_probability_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    return {}


def _multilabel_probability_metrics(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    positives = targets.sum(dim=0)
    out = {}
    has_positive = positives > 0
    if has_positive.any():
        keep = has_positive.nonzero().flatten()
        ap = tmf.multilabel_average_precision(
            probs[:, keep], targets[:, keep], num_labels=len(keep), average="none", validate_args=False
        )
        out["mAP"] = float(ap.mean())
    both = has_positive & (positives < len(targets))
    if both.any():
        keep = both.nonzero().flatten()
        auc = tmf.multilabel_auroc(
            probs[:, keep], targets[:, keep], num_labels=len(keep), average="none", validate_args=False
        )
        out["macro_roc_auc"] = float(auc.mean())
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
    if kind is TaskKind.MULTICLASS:
        return float(
            tmf.multiclass_calibration_error(
                probs, targets, num_classes=probs.shape[1], n_bins=n_bins, validate_args=False
            )
        )
    positive = probs[:, 1].contiguous() if kind is TaskKind.BINARY else probs.flatten()
    return float(tmf.binary_calibration_error(positive, targets.flatten(), n_bins=n_bins, validate_args=False))


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


def _mean_where(values: torch.Tensor, mask: torch.Tensor) -> float:
    return values[mask].double().mean().item()
