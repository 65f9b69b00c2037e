"""Reference implementations the tests compare labelwise against.

Written directly from the definitions with `torch.nn.functional` / numpy, or with scikit-learn; never with
labelwise code, so a bug in ours cannot hide in both.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import sklearn.metrics as skm
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from labelwise.task import TaskKind


# -- losses ------------------------------------------------------------------------------------------
def reference_loss(
    kind: TaskKind | str,
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    pos_weight: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The loss torch defines for these logits and targets, written out from log-probabilities.

    Long targets: cross-entropy with class weights and label smoothing as `F.cross_entropy` documents it
    (mean normalised by the summed weights of the targets). Float targets: binary cross-entropy with
    ``pos_weight``, targets smoothed toward 0.5.
    """
    if targets.dtype == torch.long:
        log_p = F.log_softmax(logits, dim=1)
        weight = class_weight if class_weight is not None else torch.ones(logits.shape[1])
        norm = weight[targets].sum()
        nll = -(weight[targets] * log_p.gather(1, targets[:, None])[:, 0]).sum() / norm
        smooth = -(log_p * weight).sum() / norm
        return (1 - label_smoothing) * nll + label_smoothing / logits.shape[1] * smooth
    z = logits[:, 0] if TaskKind(kind) is TaskKind.BINARY else logits
    t = targets * (1 - label_smoothing) + 0.5 * label_smoothing
    pw = pos_weight if pos_weight is not None else torch.ones(())
    return -(pw * t * F.logsigmoid(z) + (1 - t) * F.logsigmoid(-z)).mean()


# Head types (`labelwise.task.HeadType`, spelled as strings here) whose loss is cross-entropy on class indices.
_SOFTMAX_HEADS = ("two_logits", "softmax", "ranked")


def reference_head_loss(
    head: str,
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    pos_weight: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The loss each head type is defined to train with (`reference_loss` does the arithmetic).

    Softmax heads: cross-entropy on class indices. ``one_logit``: BCE on the one logit. ``multilabel``: BCE per
    label. ``one_vs_rest``: BCE per class on the one-hot encoding of the class indices.
    """
    head = str(head)
    if head in _SOFTMAX_HEADS:
        return reference_loss(
            "multiclass", logits, targets.long(), class_weight=class_weight, label_smoothing=label_smoothing
        )
    if head == "one_vs_rest":
        targets = F.one_hot(targets.long(), logits.shape[1]).float()
    kind = "binary" if head == "one_logit" else "multilabel"
    return reference_loss(kind, logits, targets.float(), pos_weight=pos_weight, label_smoothing=label_smoothing)


def reference_probabilities(head: str, logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(N, C)`` of each head type, from the definitions with exp only.

    ``two_logits`` is written as ``sigmoid(z1 - z0)``, not as a softmax: the identity the two binary heads share.
    """
    head = str(head)
    sigmoid = 1.0 / (1.0 + torch.exp(-logits))
    if head == "one_logit":
        return torch.cat([1.0 - sigmoid, sigmoid], dim=1)
    if head == "two_logits":
        positive = 1.0 / (1.0 + torch.exp(-(logits[:, 1] - logits[:, 0])))
        return torch.stack([1.0 - positive, positive], dim=1)
    if head in _SOFTMAX_HEADS:
        exp = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
        return exp / exp.sum(dim=1, keepdim=True)
    if head == "one_vs_rest":
        return sigmoid / sigmoid.sum(dim=1, keepdim=True)
    return sigmoid


# -- metrics -----------------------------------------------------------------------------------------
def reference_ece(confidences: np.ndarray, hits: np.ndarray, *, n_bins: int = 15) -> float:
    """L1 expected calibration error with equal-width bins ``[k/n, (k+1)/n)`` (and 1.0 in a bin of its own)."""
    bins = np.digitize(confidences, np.linspace(0, 1, n_bins + 1)) - 1
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.mean() * abs(hits[inside].mean() - confidences[inside].mean())
    return float(total)


def reference_metrics(
    kind: TaskKind | str, probs: torch.Tensor, targets: torch.Tensor, decisions: torch.Tensor, classes: tuple[Any, ...]
) -> dict[str, float]:
    """scikit-learn's value of each metric `compute_metrics` reports, under the definitions labelwise states."""
    p, y, d = probs.double().numpy(), targets.long().numpy(), decisions.long().numpy()
    return _REFERENCES[TaskKind(kind)](p, y, d, classes)


def _binary(p: np.ndarray, y: np.ndarray, d: np.ndarray, classes: tuple[Any, ...]) -> dict[str, float]:
    decided = d >= 0
    yd, dd = y[decided], d[decided]
    return {
        "coverage": decided.mean(),
        "accuracy": skm.accuracy_score(yd, dd),
        "precision": skm.precision_score(yd, dd, zero_division=0),
        "recall": skm.recall_score(yd, dd, zero_division=0),
        "f1": skm.f1_score(yd, dd, zero_division=0),
        "balanced_accuracy": _balanced_accuracy(yd, dd),
        "roc_auc": skm.roc_auc_score(y, p[:, 1]),
        "pr_auc": skm.average_precision_score(y, p[:, 1]),
        "log_loss": skm.log_loss(y, p[:, 1]),
        "brier": skm.brier_score_loss(y, p[:, 1]),
        "ece": reference_ece(p[:, 1], y),
    }


def _multiclass(p: np.ndarray, y: np.ndarray, d: np.ndarray, classes: tuple[Any, ...]) -> dict[str, float]:
    decided = d >= 0
    yd, dd = y[decided], d[decided]
    present = np.unique(yd)
    recalls = skm.recall_score(yd, dd, labels=present, average=None)
    labels = list(range(len(classes)))
    p = p / p.sum(axis=1, keepdims=True)  # float32 softmax rows sum to 1 +- 1e-7; sklearn warns beyond 1.5e-8
    return {
        "coverage": decided.mean(),
        "accuracy": skm.accuracy_score(yd, dd),
        "macro_f1": skm.f1_score(yd, dd, average="macro"),
        "balanced_accuracy": _balanced_accuracy(yd, dd),
        **{f"recall/{classes[c]}": r for c, r in zip(present, recalls, strict=True)},
        "log_loss": skm.log_loss(y, p, labels=labels),
        "brier": skm.brier_score_loss(y, p, labels=labels),
        "ece": reference_ece(p.max(axis=1), (p.argmax(axis=1) == y).astype(float)),
    }


def _multilabel(p: np.ndarray, y: np.ndarray, d: np.ndarray, classes: tuple[Any, ...]) -> dict[str, float]:
    positives = y.sum(axis=0)
    has_positive = positives > 0
    both = has_positive & (positives < len(y))
    out = {
        "micro_f1": skm.f1_score(y, d, average="micro"),
        # zero_division=nan: labels with nothing to find and nothing found are left out of the mean.
        "macro_f1": skm.f1_score(y, d, average="macro", zero_division=np.nan),
        "hamming_loss": skm.hamming_loss(y, d),
        "subset_accuracy": skm.accuracy_score(y, d),
        "empty_prediction_rate": float((d.sum(axis=1) == 0).mean()),
        "log_loss": np.mean([skm.log_loss(y[:, j], p[:, j], labels=[0, 1]) for j in range(y.shape[1])]),
        "brier": np.mean([skm.brier_score_loss(y[:, j], p[:, j], pos_label=1) for j in range(y.shape[1])]),
        "ece": reference_ece(p.ravel(), y.ravel().astype(float)),
    }
    if has_positive.any():
        out["mAP"] = skm.average_precision_score(y[:, has_positive], p[:, has_positive], average="macro")
    if both.any():
        out["macro_roc_auc"] = skm.roc_auc_score(y[:, both], p[:, both], average="macro")
    return {name: float(value) for name, value in out.items()}


def _balanced_accuracy(y: np.ndarray, d: np.ndarray) -> float:
    # sklearn warns when a decided class is absent from the targets, then averages over the classes present:
    # the definition labelwise states.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true", UserWarning)
        return float(skm.balanced_accuracy_score(y, d))


_REFERENCES = {TaskKind.BINARY: _binary, TaskKind.MULTICLASS: _multiclass, TaskKind.MULTILABEL: _multilabel}


def reference_score(metric: str, targets: np.ndarray, decisions: np.ndarray) -> float:
    """A threshold-tuning metric spec on 0/1 targets and 0/1 decisions, from scikit-learn.

    Constrained specs (``precision@recall:R``, ``recall@precision:P``) score ``-inf`` where the constraint fails.
    """
    name, _, param = metric.partition(":")
    if name == "f1":
        return float(skm.f1_score(targets, decisions, zero_division=0))
    if name == "fbeta":
        return float(skm.fbeta_score(targets, decisions, beta=float(param), zero_division=0))
    if name in ("precision@recall", "recall@precision"):
        precision = float(skm.precision_score(targets, decisions, zero_division=0))
        recall = float(skm.recall_score(targets, decisions, zero_division=0))
        objective, bounded = (precision, recall) if name == "precision@recall" else (recall, precision)
        return objective if bounded >= float(param) else -np.inf
    if name == "accuracy":
        return float(skm.accuracy_score(targets, decisions))
    if name == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(targets, decisions))
    if name == "youden":
        # The ROC point of 0/1 decisions is the one at threshold 1 (flag decisions >= 1); before it only (0, 0).
        fpr, tpr, thresholds = skm.roc_curve(targets, decisions, drop_intermediate=False)
        point = np.flatnonzero(thresholds >= 1)[-1]
        return float(tpr[point] - fpr[point])
    assert name == "mcc", metric
    return float(skm.matthews_corrcoef(targets, decisions))


def reference_best_youden(targets: np.ndarray, probs: np.ndarray) -> float:
    """Youden's J of the best threshold on ``probs``: max(TPR - FPR) over scikit-learn's ROC curve."""
    fpr, tpr, _ = skm.roc_curve(targets, probs, drop_intermediate=False)
    return float(np.max(tpr - fpr))


# -- temperature scaling -----------------------------------------------------------------------------
class _StoredLogits(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A 'classifier' whose decision function returns stored logits for the row indices it is given."""

    def __init__(self, logits: np.ndarray | None = None) -> None:
        self.logits = logits

    def fit(self, X: np.ndarray, y: np.ndarray) -> _StoredLogits:
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        assert self.logits is not None
        return np.asarray(self.logits[X[:, 0].astype(int)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = self.decision_function(X)
        return np.asarray(self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)])


def reference_calibrated_probs(kind: TaskKind | str, logits: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Class probabilities ``(N, num_classes)`` after sklearn's temperature scaling fitted on the same data.

    sklearn scales one softmax; it reads a 1-d decision function ``x`` as the two logits ``(-x, x)``, so a
    sigmoid logit ``z`` is passed as ``z / 2`` (``softmax(-z/2, z/2)[1] == sigmoid(z)``), a two-logit binary head
    as ``(z1 - z0) / 2``, and each multilabel logit as its own binary problem.
    """
    z, y = logits.double().numpy(), targets.long().numpy()
    if TaskKind(kind) is TaskKind.MULTICLASS:
        return _sklearn_temperature(z, y)
    if TaskKind(kind) is TaskKind.BINARY:
        half = z[:, 0] / 2 if z.shape[1] == 1 else (z[:, 1] - z[:, 0]) / 2
        return _sklearn_temperature(half, y)
    return np.stack([_sklearn_temperature(z[:, j] / 2, y[:, j])[:, 1] for j in range(z.shape[1])], axis=1)


def _sklearn_temperature(decision: np.ndarray, targets: np.ndarray) -> np.ndarray:
    rows = np.arange(len(targets))[:, None]
    stored = _StoredLogits(decision).fit(rows, targets)
    calibrated = CalibratedClassifierCV(FrozenEstimator(stored), method="temperature").fit(rows, targets)
    return np.asarray(calibrated.predict_proba(rows))


# -- "none of these": unknown scores, detector metrics, risk-coverage ----------------------------------
# pytorch-ood (a test dependency) is imported where it is used, so a missing install fails these tests only.
def reference_unknown_scores(head: str, score: str, logits: torch.Tensor) -> torch.Tensor:
    """Unknown scores (higher = more likely none of the known classes) from their papers' formulas.

    Softmax heads go through pytorch-ood's detectors: `MaxSoftmax.score` is ``-max softmax`` (ours is
    ``1 - max softmax``, the same order) and `EnergyBased.score` with T = 1 is ``-logsumexp``. Sigmoid heads have
    no pytorch-ood detector and are written out: one logit ``1 - max(p, 1 - p)``; one sigmoid per class
    ``1 - max sigmoid`` and JointEnergy ``-sum log(1 + e^z)`` (Wang et al. 2021).
    """
    from pytorch_ood.detector import EnergyBased, MaxSoftmax

    z = logits.double()
    if head == "softmax":
        return 1 + MaxSoftmax.score(z) if score == "max_prob" else EnergyBased.score(z)
    if head == "one_logit":
        positive = torch.sigmoid(z[:, 0])
        return 1 - torch.maximum(positive, 1 - positive)
    if score == "max_prob":
        return 1 - torch.sigmoid(z).max(dim=1).values
    return -torch.log1p(torch.exp(z)).sum(dim=1)


def reference_ood_metrics(scores: torch.Tensor, is_unknown: torch.Tensor) -> dict[str, float]:
    """pytorch-ood's AUROC and FPR at 95% TPR, the latter with *known* items as the positive class.

    pytorch-ood labels OOD items ``< 0`` and takes them as positive; for the FPR with known items positive (the
    fraction of unknown items accepted when 95% of known ones are) the known items are labelled -1 and the
    scores negated, so that lower unknown scores rank first.
    """
    from pytorch_ood.metrics.functional import auroc, fpr_at_tpr

    labels = torch.where(is_unknown, -1, 0)
    return {
        "unknown_auroc": float(auroc(scores.double(), labels)),
        "unknown_fpr95": float(fpr_at_tpr(-scores.double(), -1 - labels, tpr=0.95)),
    }


def sklearn_ood_metrics(scores: np.ndarray, is_unknown: np.ndarray) -> dict[str, float]:
    """The same two metrics from scikit-learn's ROC: AUROC with unknown positive; the FPR at the first point of
    the known-positive ROC curve (scored by ``-scores``) whose TPR reaches 0.95."""
    fpr, tpr, _ = skm.roc_curve(~is_unknown, -scores, drop_intermediate=False)
    return {
        "unknown_auroc": float(skm.roc_auc_score(is_unknown, scores)),
        "unknown_fpr95": float(fpr[np.argmax(tpr >= 0.95)]),
    }


def reference_aurc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """1 - pytorch-ood's AURRA (mean accuracy over response rates, most confident first, confidence = -score).

    With distinct scores this is the mean error rate of the k lowest-scored items over k = 1..N; with ties it
    depends on how the sort orders them.
    """
    from pytorch_ood.metrics.functional import aurra

    return 1.0 - aurra(-scores.double(), correct.long())


# -- label issues --------------------------------------------------------------------------------------
def reference_label_issues(kind: TaskKind | str, given: Any, probs: np.ndarray) -> list[tuple[int, float]]:
    """(position, 1 - label quality) of each row cleanlab flags, in cleanlab's order, called as its docs show.

    ``given``: class indices ``(N,)`` (binary, multiclass) or a list of label-index lists (multilabel).
    """
    if TaskKind(kind) is TaskKind.MULTILABEL:
        from cleanlab.multilabel_classification import get_label_quality_scores
        from cleanlab.multilabel_classification.filter import find_label_issues
    else:
        from cleanlab.filter import find_label_issues  # type: ignore[no-redef]
        from cleanlab.rank import get_label_quality_scores  # type: ignore[no-redef]
    ranked = find_label_issues(given, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(given, probs)  # self_confidence is cleanlab's default method
    return [(int(i), 1.0 - float(quality[i])) for i in ranked]
