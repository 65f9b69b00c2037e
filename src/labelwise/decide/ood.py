"""Unknown scores for "none of these": how unlike every known class an item looks to a single-label model.

`unknown_scores` turns calibrated logits into one float64 score per item, higher = more likely none of the known
classes. Two scores, by head:

- softmax head (``softmax``, ``ranked``, ``two_logits``): ``max_prob = 1 - max_j softmax(z)_j`` (Hendrycks & Gimpel
  2017, "A Baseline for Detecting Misclassified and Out-of-Distribution Examples") and ``energy = -logsumexp(z)``
  (Liu et al. 2020, "Energy-based Out-of-distribution Detection"). Energy uses T = 1 on logits that already hold
  the fitted temperature: Liu et al. score pre-trained networks with T = 1, which keeps the score free of a tuned
  parameter, and with calibrated logits it is the free energy of the model whose probabilities we report, not of
  a second, untuned temperature. (A constant factor in front, their ``-T logsumexp(z / T)``, changes neither the
  ranking nor which items a fitted threshold accepts; only the T inside matters, and that one is calibrated.)
- one sigmoid per class (``one_vs_rest``): ``max_prob = 1 - max_j sigmoid(z_j)``, i.e. no class claims the
  item; ``energy = -sum_j softplus(z_j)``, the JointEnergy of Wang et al. 2021 ("Can multi-label classification
  networks know what they don't know?"): each sigmoid is its own two-state model with logits ``(0, z_j)`` and free
  energy ``-log(1 + e^{z_j})``, and the head's free energy is their sum because the heads are independent.
- binary with one logit (``one_logit``): ``max_prob = 1 - max(p, 1 - p)``. Energy is not defined: one logit is the
  difference of the two classes' logits, which fixes them only up to a shared constant that ``logsumexp`` depends on.

Multilabel models need none of this: they answer "none" when no label passes its threshold. The scores keep
precision for confident items (``1 - max softmax`` as the other classes' share ``rest / (1 + rest)``,
``1 - sigmoid(z)`` as ``sigmoid(-z)``), where ``1 - p`` would round them all to the same 0: items with equal
scores are accepted or rejected together.

Detector metrics (`ood_metrics`), with unknown items as the positive class scored by the unknown score:

- ``unknown_auroc``: the probability that a random unknown item scores higher than a random known one (ties
  count half).
- ``unknown_fpr95``: the fraction of unknown items accepted as known (score <= t) at the threshold t where 95% of
  the known items are accepted: the FPR at 95% TPR with *known* items as positive, as in Hendrycks et al.'s
  Outlier Exposure code and Liu et al. The cut is the first threshold, going up through the distinct scores,
  whose accepted fraction of known items is ``>= 0.95`` (pytorch-ood's ``fpr_at_tpr`` rule; its default takes
  *unknown* items as positive, so ``fpr_at_tpr(-scores, labels)`` with the known items labelled ``-1`` gives ours).
- Both are left out (never NaN) unless there is at least one known and one unknown item.

Selective prediction (`risk_coverage`, `aurc`): the model answers the items with the lowest scores and abstains
on the rest. ``aurc`` is the area under the risk-coverage curve (Geifman, Uziel & El-Yaniv 2019, "Bias-Reduced
Uncertainty Estimation for Deep Neural Classifiers"): the mean, over k = 1..N, of the error rate among the k
lowest-scored items. Items with equal scores have no order among them; inside a tie group the errors are spread
evenly (the expectation over all orders of the group), so the value does not depend on how a sort breaks ties.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from labelwise.errors import ConfigError, DataError, format_examples, format_rows
from labelwise.task import HeadType, Task

__all__ = ["UNKNOWN_SCORES", "aurc", "check_score", "ood_metrics", "risk_coverage", "unknown_scores"]

UNKNOWN_SCORES = ("max_prob", "energy")
# The share of known items the FPR95 threshold accepts.
_KNOWN_ACCEPTED = 0.95


# -- scores ------------------------------------------------------------------------------------------
def _softmax_max_prob(logits: torch.Tensor) -> torch.Tensor:
    # 1 - max softmax = rest / (1 + rest), rest = sum of exp(z_j - z_max) over the other classes: exact for confident
    # items, where 1 - p (and logsumexp, which rounds z_max + 1e-20 to z_max) would give 0 for all of them.
    shifted = logits - logits.max(dim=1, keepdim=True).values
    others = torch.exp(shifted).scatter(1, shifted.argmax(dim=1, keepdim=True), 0.0)
    rest = others.sum(dim=1)
    return rest / (1.0 + rest)


def _softmax_energy(logits: torch.Tensor) -> torch.Tensor:
    return -torch.logsumexp(logits, dim=1)


def _one_logit_max_prob(logits: torch.Tensor) -> torch.Tensor:
    # 1 - max(p, 1 - p) with p = sigmoid(z) is sigmoid(-|z|).
    return torch.sigmoid(-logits[:, 0].abs())


def _one_vs_rest_max_prob(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(-logits.max(dim=1).values)


def _one_vs_rest_energy(logits: torch.Tensor) -> torch.Tensor:
    return -F.softplus(logits).sum(dim=1)


_Score = Callable[[torch.Tensor], torch.Tensor]
_SOFTMAX_SCORES: dict[str, _Score] = {"max_prob": _softmax_max_prob, "energy": _softmax_energy}
# head type -> score name -> formula; a score that is missing is explained by `_unsupported`.
_SCORES: dict[HeadType, dict[str, _Score]] = {
    HeadType.ONE_LOGIT: {"max_prob": _one_logit_max_prob},
    HeadType.TWO_LOGITS: _SOFTMAX_SCORES,
    HeadType.SOFTMAX: _SOFTMAX_SCORES,
    HeadType.RANKED: _SOFTMAX_SCORES,
    HeadType.ONE_VS_REST: {"max_prob": _one_vs_rest_max_prob, "energy": _one_vs_rest_energy},
    HeadType.MULTILABEL: {},
}


def unknown_scores(logits: torch.Tensor, task: Task, *, score: str) -> torch.Tensor:
    """Score each item for "none of the known classes" (formulas in the module docstring).

    Args:
        logits: ``(N, task.head_width)`` float calibrated logits (`Calibration.apply` already applied).
        task: the single-label Task the model was trained for.
        score: one of `UNKNOWN_SCORES`.

    Returns:
        ``(N,)`` float64, higher = more likely none of the known classes.

    Raises:
        ConfigError: an unknown score name, a multilabel Task, energy on a one-logit binary head, or logits that
            do not fit the Task.
        DataError: non-finite logits.

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> unknown_scores(torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), task, score="max_prob")
        tensor([0.0353, 0.6667], dtype=torch.float64)
    """
    check_score(task, score=score)
    return _SCORES[task.head][score](_check_logits(logits, task).double())


def check_score(task: Task, *, score: str) -> None:
    """Raise unless ``task``'s head can give the unknown score ``score``; `unknown_scores` raises the same.

    Lets a caller reject ``--allow-none energy`` on a one-logit binary head before any training.

    Raises:
        ConfigError: an unknown score name (with the closest one), a multilabel Task, or energy on a one-logit
            binary head.

    Example:
        >>> check_score(Task(kind="binary", classes=("no", "yes"), head="two_logits"), score="energy")
    """
    _check_score_name(score)
    if score not in _SCORES[task.head]:
        raise _unsupported(task, score)


def _check_score_name(score: str) -> None:
    if not isinstance(score, str) or score not in UNKNOWN_SCORES:
        close = difflib.get_close_matches(str(score), UNKNOWN_SCORES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"score={score!r} is not an unknown score; expected one of {', '.join(UNKNOWN_SCORES)}.{hint} "
            "Pick it with `--allow-none SCORE`."
        )


def _unsupported(task: Task, score: str) -> ConfigError:
    if task.head is HeadType.MULTILABEL:
        return ConfigError(
            f"unknown scores are for single-label models, and this Task is multilabel ({task.num_classes} labels); "
            "a multilabel model already answers none when no label passes its threshold. Drop `--allow-none`."
        )
    return ConfigError(
        f"score={score!r} is not defined for a binary model with one logit: the logit is the difference of the two "
        "classes' logits, which fixes them only up to a shared constant that the energy depends on. Train with "
        "`--binary-head two` (two logits, softmax) to use the energy, or use `--allow-none max_prob`."
    )


def _check_logits(logits: torch.Tensor, task: Task) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        found = getattr(logits, "dtype", type(logits).__name__)
        raise ConfigError(f"logits must be a float tensor, got {found}. Pass the model's calibrated logits.")
    if logits.ndim != 2 or logits.shape[1] != task.head_width:
        raise ConfigError(
            f"logits of shape {tuple(logits.shape)} do not fit this {task.kind} Task: expected "
            f"(N, {task.head_width}). Pass the logits of the model trained for this Task."
        )
    logits = logits.detach()
    bad = ~torch.isfinite(logits).all(dim=1)
    if bad.any():
        raise DataError(
            f"the logits of {format_rows(bad.nonzero().flatten().tolist())} are not finite (NaN or inf); expected "
            "finite values. Check those rows' inputs for NaN or inf, and the training run for divergence."
        )
    return logits


# -- shared checks and the acceptance curve ----------------------------------------------------------
def _check_score_shape(scores: torch.Tensor, *, score: str = "...") -> None:
    """Raise unless ``scores`` is a ``(N,)`` float tensor."""
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or scores.ndim != 1:
        found = (
            f"shape {tuple(scores.shape)} of dtype {scores.dtype}"
            if isinstance(scores, torch.Tensor)
            else type(scores).__name__
        )
        raise ConfigError(
            f"scores must be a (N,) float tensor, got {found}. "
            f"Make them with `unknown_scores(logits, task, score={score})`."
        )


def _check_scores(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` as a detached ``(N,)`` float64 tensor of finite values."""
    _check_score_shape(scores)
    bad = ~torch.isfinite(scores)
    if bad.any():
        raise DataError(
            f"scores must be finite; {format_rows(bad.nonzero().flatten().tolist())} are NaN or inf. "
            "Make them with `unknown_scores(logits, task, score=...)` from finite logits."
        )
    return scores.detach().double()


def _check_flags(flags: torch.Tensor, *, name: str, num_samples: int, what: str) -> torch.Tensor:
    """``flags`` as a ``(N,)`` bool tensor; bool or 0/1 numbers accepted."""
    if not isinstance(flags, torch.Tensor) or tuple(flags.shape) != (num_samples,):
        found = tuple(flags.shape) if isinstance(flags, torch.Tensor) else type(flags).__name__
        raise ConfigError(
            f"{name} of shape {found} does not fit {num_samples} scores: expected ({num_samples},) bool, {what}."
        )
    flags = flags.detach()
    if flags.dtype != torch.bool:
        bad = (flags != 0) & (flags != 1)
        if bad.any():
            raise ConfigError(
                f"{name} must be bool (or 0/1), {what}; {format_rows(bad.nonzero().flatten().tolist())} hold "
                f"{format_examples(flags[bad].tolist())}."
            )
        flags = flags == 1
    return flags


def _is_fraction(value: object) -> bool:
    """A number (not a bool) in (0, 1]: a coverage or a selective accuracy."""
    return not isinstance(value, bool) and isinstance(value, int | float) and 0.0 < value <= 1.0


class _Curve(NamedTuple):
    """Accepting the items with ``score <= thresholds[k]``, for each distinct score in increasing order."""

    thresholds: torch.Tensor  # (M,) float64, the distinct scores
    accepted: torch.Tensor  # (M,) int64, items accepted at each threshold
    flagged: torch.Tensor  # (M,) int64, flagged items among them
    num_samples: int


def _acceptance_curve(scores: torch.Tensor, flags: torch.Tensor) -> _Curve:
    """The curve of (N,) float64 ``scores`` (N >= 1) and (N,) bool ``flags``; equal scores enter together."""
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    last = torch.ones_like(sorted_scores, dtype=torch.bool)  # the last item of each group of equal scores
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    idx = last.nonzero().flatten()
    # int64 counts are exact for any N (float32 is exact only up to 2^24 items).
    flagged = torch.cumsum(flags[order].long(), dim=0)[idx]
    return _Curve(sorted_scores[idx], idx + 1, flagged, len(scores))


def _coverage_index(curve: _Curve, coverage: float) -> int:
    """The first (smallest) threshold that accepts at least ``coverage`` of the items."""
    # accepted / N compared in float64: a coverage written as k / N (0.95 of 20) is reached at exactly k items.
    reached = curve.accepted.double() / curve.num_samples >= coverage
    return int(reached.nonzero()[0].item())  # the last threshold accepts all, so one is always reached


# -- detector metrics --------------------------------------------------------------------------------
def ood_metrics(scores: torch.Tensor, is_unknown: torch.Tensor) -> dict[str, float]:
    """How well ``scores`` separate unknown items from known ones: ``unknown_auroc`` and ``unknown_fpr95``.

    Definitions in the module docstring; both keys are left out without at least one known and one unknown item.

    Args:
        scores: ``(N,)`` float unknown scores (`unknown_scores`).
        is_unknown: ``(N,)`` bool, True for items of none of the known classes.

    Returns:
        the metrics as plain floats.

    Raises:
        ConfigError: inputs of the wrong shape or dtype.
        DataError: non-finite scores.

    Example:
        >>> scores = torch.tensor([0.1, 0.2, 0.3, 0.9, 0.25, 0.8])
        >>> ood_metrics(scores, torch.tensor([False, False, False, False, True, True]))
        {'unknown_auroc': 0.625, 'unknown_fpr95': 1.0}
    """
    scores = _check_scores(scores)
    is_unknown = _check_flags(is_unknown, name="is_unknown", num_samples=len(scores), what="True for unknown items")
    num_unknown = int(is_unknown.sum().item())
    if num_unknown == 0 or num_unknown == len(scores):
        return {}
    import sklearn.metrics  # deferred: predicting never scores

    auroc = sklearn.metrics.roc_auc_score(is_unknown.cpu().numpy(), scores.double().cpu().numpy())
    curve = _acceptance_curve(scores, is_unknown)
    known_accepted = (curve.accepted - curve.flagged).double() / (len(scores) - num_unknown)
    cut = int((known_accepted >= _KNOWN_ACCEPTED).nonzero()[0].item())
    return {"unknown_auroc": float(auroc), "unknown_fpr95": curve.flagged[cut].item() / num_unknown}


# -- selective prediction ----------------------------------------------------------------------------
def risk_coverage(
    scores: torch.Tensor, correct: torch.Tensor, *, coverages: Sequence[float] = (1.0, 0.95, 0.9, 0.8, 0.7, 0.5)
) -> list[dict[str, float]]:
    """Selective accuracy when the model answers only the lowest-scored items, at each of ``coverages``.

    At each target coverage the threshold is the smallest distinct score that accepts (``score <= threshold``) at
    least that fraction of the items; items with equal scores are accepted together, so ``coverage`` (achieved)
    can exceed ``target_coverage``. `fit_abstention` fits its threshold by the same rule.

    Args:
        scores: ``(N,)`` float unknown scores (`unknown_scores`) of items of known classes.
        correct: ``(N,)`` bool, True where the model's decision was right.
        coverages: target coverages, each in (0, 1].

    Returns:
        one row per target coverage, in the order given: ``target_coverage``, ``coverage`` (achieved),
        ``threshold``, ``selective_accuracy``, ``num_accepted``.

    Raises:
        ConfigError: a coverage outside (0, 1], or inputs of the wrong shape or dtype.
        DataError: no items, or non-finite scores.

    Example:
        >>> scores = torch.tensor([0.125, 0.25, 0.375, 0.5])
        >>> for row in risk_coverage(scores, torch.tensor([True, True, False, True]), coverages=(1.0, 0.5)):
        ...     print(row)
        {'target_coverage': 1.0, 'coverage': 1.0, 'threshold': 0.5, 'selective_accuracy': 0.75, 'num_accepted': 4}
        {'target_coverage': 0.5, 'coverage': 0.5, 'threshold': 0.25, 'selective_accuracy': 1.0, 'num_accepted': 2}
    """
    bad = [c for c in coverages if not _is_fraction(c)]
    if bad or not coverages:
        raise ConfigError(
            f"coverages={tuple(coverages)!r} holds {format_examples(bad) if bad else 'nothing'}; expected fractions "
            "in (0, 1] of the items the model keeps answering, such as (1.0, 0.95, 0.9)."
        )
    curve = _selective_curve(scores, correct)
    rows = []
    for target in map(float, coverages):
        k = _coverage_index(curve, target)
        accepted = int(curve.accepted[k].item())
        rows.append(
            {
                "target_coverage": target,
                "coverage": accepted / curve.num_samples,
                "threshold": curve.thresholds[k].item(),
                "selective_accuracy": curve.flagged[k].item() / accepted,
                "num_accepted": accepted,
            }
        )
    return rows


def aurc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the risk-coverage curve: the mean error rate of the k lowest-scored items over k = 1..N.

    Lower is better; a model that is always right scores 0. Ties are spread evenly (module docstring).

    Args:
        scores: ``(N,)`` float unknown scores (`unknown_scores`) of items of known classes.
        correct: ``(N,)`` bool, True where the model's decision was right.

    Returns:
        AURC in [0, 1].

    Raises:
        ConfigError: inputs of the wrong shape or dtype.
        DataError: no items, or non-finite scores.

    Example:
        >>> round(aurc(torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([True, True, False, True])), 4)
        0.1458
    """
    curve = _selective_curve(scores, correct)
    sizes = torch.diff(curve.accepted, prepend=curve.accepted.new_zeros(1))
    errors = curve.accepted - curve.flagged
    errors_before = torch.cat([errors.new_zeros(1), errors[:-1]])
    group = torch.repeat_interleave(torch.arange(len(sizes), device=sizes.device), sizes)
    k = torch.arange(1, curve.num_samples + 1, dtype=torch.float64, device=sizes.device)
    # Errors among the first k items: those of earlier groups, plus this group's error rate per item inside it.
    group_errors = (errors - errors_before).double() / sizes.double()
    expected_errors = (
        errors_before[group].double() + (k - (curve.accepted - sizes)[group].double()) * group_errors[group]
    )
    return (expected_errors / k).mean().item()


def _selective_curve(scores: torch.Tensor, correct: torch.Tensor) -> _Curve:
    """The acceptance curve of validation items, ``flagged`` = correct; raises on no items."""
    scores = _check_scores(scores)
    if len(scores) == 0:
        raise DataError(
            "no items to score (0 scores); expected at least one validation item of a known class. "
            "Give a validation split."
        )
    flags = _check_flags(correct, name="correct", num_samples=len(scores), what="True where the decision was right")
    return _acceptance_curve(scores, flags)
