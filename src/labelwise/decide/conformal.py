"""Split-conformal prediction sets: a set of classes per item that holds the truth for ``level`` of the items.

`fit_conformal` scores each validation item by how far down its own probabilities the truth sits (a
*nonconformity score*, higher = less expected) and keeps ``qhat``, the ``k``-th smallest of the ``n`` scores,
``k = ceil((n + 1) * level)``: the ``k / n`` empirical quantile of Angelopoulos & Bates ("A Gentle Introduction
to Conformal Prediction", 2021), taken as the order statistic itself (numpy's ``quantile(scores, k / n,
method="higher")`` can land one above it). `ConformalSets.sets` gives a new item every class whose score is
``<= qhat``. If validation and new items are exchangeable (drawn alike), a new item's truth is in its set with
probability at least ``level``, whatever the model; a better calibrated model gets smaller, more adaptive sets.
``k <= n`` needs ``n >= level / (1 - level)`` items (`min_calibration_size`). ``level`` is read as the decimal it
prints as (``0.9`` is 9/10), so ``k`` has no float rounding.

Methods (``method="auto"``: ``aps`` for binary and multiclass, ``threshold`` for multilabel):

- ``aps`` (Romano, Sesia & Candes 2020, "Classification with Valid and Adaptive Coverage"): sort the item's
  probabilities in decreasing order (ties by class order); a class's score is the probability mass ranked above it
  plus ``u`` times its own. Sets are a top-ranked prefix whose size adapts to how spread the probabilities are.
- ``raps`` (Angelopoulos, Bates, Malik & Jordan 2021, "Uncertainty Sets for Image Classifiers using Conformal
  Prediction"): APS plus ``penalty * max(0, rank - k_reg)``, which keeps the low ranks of a long tail out of the
  sets. ``penalty`` defaults to `RAPS_PENALTY` = 0.01, from the paper's grid (0.001 to 0.5), fixed rather than
  tuned for size as the paper does on held-out data. ``k_reg`` defaults to the ``k``-th smallest rank of the true
  class among the validation items (the top-k size that covers ``level`` of them; the paper's rule). Reading that
  one integer from the same items as ``qhat`` strictly costs the finite-sample guarantee a vanishing amount; pass
  ``k_reg`` to fix it in advance for the exact guarantee.
- ``threshold`` (LAC, Sadinle, Lei & Wasserman 2019, for one label per item; its all-labels form for multilabel):
  a class's score is ``1 - p``, so the set is every class with ``p >= 1 - qhat``. Multilabel: an item's score is
  the largest ``1 - p`` over its true labels, so ``P(every true label in the set) >= level``. An item with no true
  label is covered by any set; it scores 0, the lowest a score can be, so it counts in ``n`` (it is one of the
  exchangeable items) but never pushes ``qhat`` up. If more than ``level`` of the items hold no label, ``qhat``
  is 0 and sets hold only labels with ``p == 1``: valid, and over-covering.

Randomisation. APS and RAPS draw one ``u`` in ``[0, 1)`` per item, the same for all its classes. Without it (the
original APS, whose sets run up to and include the class where the mass reaches ``qhat``) every set holds the top
class, so a confident model over-covers: one whose top class is right 85% of the time covers 85% at level 0.8.
With it the coverage is at most ``level + 1 / (n + 1)`` when scores do not tie, and a confident item may get an
empty set. So that saving and loading a model, or predicting one item instead of a batch, never changes a set,
``u`` is a hash of the item's probability row, not a draw: each probability is rounded to float32, its 32-bit
pattern mixed with its column index through splitmix64 (Steele, Lea & Flood 2014) in int64 torch ops
(two's-complement wrap-around), the columns summed and mixed once more, and the top 53 bits divided by 2**53.
Fitting and `ConformalSets.sets` use this one rule. Identical probability rows (outputs saturated at exactly 0
or 1) share ``u`` and so their set: their coverage is all or nothing, valid but larger than ``level`` needs;
`fit_conformal` warns when such ties push the validation coverage more than 0.01 past ``k / n``.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from labelwise._value_checks import check_probs, check_targets
from labelwise.decide._conformal_checks import (
    RAPS_PENALTY,
    check_enough,
    check_level,
    check_raps_params,
    cutoff_rank,
    min_calibration_size,
)
from labelwise.decide._conformal_scores import all_scores
from labelwise.errors import ConfigError, DataWarning, check_fields
from labelwise.task import Task, TaskKind

__all__ = ["CONFORMAL_METHODS", "RAPS_PENALTY", "ConformalSets", "fit_conformal", "min_calibration_size", "set_metrics"]

_SINGLE = frozenset({TaskKind.BINARY, TaskKind.MULTICLASS})
# Which Task kinds each method serves; "auto" picks by kind (`_KindSets.auto_method`).
CONFORMAL_METHODS: dict[str, frozenset[TaskKind]] = {
    "aps": _SINGLE,
    "raps": _SINGLE,
    "threshold": frozenset(TaskKind),
}


def _one_hot(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(targets.long(), num_classes).bool()


def _indicator(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    return targets.bool()


@dataclass(frozen=True)
class _KindSets:
    """What conformal sets mean for one kind of task."""

    auto_method: str  # the method ``method="auto"`` picks
    truth: Callable[[torch.Tensor, int], torch.Tensor]  # (targets, num_classes) -> (N, C) bool, True = true class
    covers: str  # what a covering set holds
    members: str  # what the set's members are called
    zero_causes: str | None  # why many items score exactly 0, the lowest score (None: nothing typical)


_SINGLE_LABEL = _KindSets("aps", _one_hot, "the true class", "classes", None)
_KINDS: dict[TaskKind, _KindSets] = {
    TaskKind.BINARY: _SINGLE_LABEL,
    TaskKind.MULTICLASS: _SINGLE_LABEL,
    TaskKind.MULTILABEL: _KindSets(
        "threshold",
        _indicator,
        "all true labels",
        "labels",
        "items with no true label, or labels with probability exactly 1",
    ),
}
# How far past ``k / n`` the validation coverage may go before `fit_conformal` warns about ties.
_TIE_SLACK = 0.01


def _resolve_method(method: str, kind: TaskKind) -> str:
    if method == "auto":
        return _KINDS[kind].auto_method
    if method not in CONFORMAL_METHODS:
        close = difflib.get_close_matches(str(method), [*CONFORMAL_METHODS, "auto"], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"conformal method={method!r} is unknown; expected one of auto, {', '.join(CONFORMAL_METHODS)}.{hint}"
        )
    if kind not in CONFORMAL_METHODS[method]:
        raise ConfigError(
            f"conformal method={method!r} ranks the classes of one distribution to cover one true class; a {kind} "
            "item can hold several. Use method='threshold' (or 'auto'), which covers all of an item's true labels."
        )
    return method


@dataclass(frozen=True, kw_only=True)
class ConformalSets:
    """Fitted split-conformal prediction sets; `fit_conformal` makes one, ``sets(probs)`` applies it.

    Args:
        kind: the Task kind.
        method: ``aps``, ``raps`` or ``threshold`` (see the module docstring).
        level: the guaranteed fraction of items whose set holds the truth (multilabel: all true labels).
        qhat: the score cutoff; a class is in an item's set when its score is ``<= qhat``.
        num_classes: width of the probabilities it applies to.
        penalty: RAPS only: score added per rank past ``k_reg``.
        k_reg: RAPS only: ranks up to this one are not penalised.
        num_samples: number of validation items it was fitted on.

    Example:
        >>> conformal = ConformalSets(kind="multilabel", method="threshold", level=0.9, qhat=0.75, num_classes=3)
        >>> conformal.sets(torch.tensor([[0.9, 0.3, 0.1]]))
        tensor([[ True,  True, False]])
    """

    kind: TaskKind
    method: str
    level: float
    qhat: float
    num_classes: int
    penalty: float | None = None
    k_reg: int | None = None
    num_samples: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", TaskKind(self.kind))
        except ValueError:
            raise ConfigError(f"kind={self.kind!r}; expected binary, multiclass or multilabel.") from None
        if self.method == "auto" or _resolve_method(self.method, self.kind) != self.method:
            raise ConfigError(f"method={self.method!r}; a fitted ConformalSets names its method: aps, raps, threshold.")
        check_level(self.level)
        if not isinstance(self.qhat, int | float) or isinstance(self.qhat, bool) or not math.isfinite(self.qhat):
            raise ConfigError(f"qhat={self.qhat!r}; expected a finite number. Fit it with `fit_conformal`.")
        for name, low in (("num_classes", 2), ("num_samples", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name}={value!r}; expected an integer >= {low}.")
        check_raps_params(self.method, self.penalty, self.k_reg, fitted=True)
        object.__setattr__(self, "level", float(self.level))
        object.__setattr__(self, "qhat", float(self.qhat))
        if self.penalty is not None:
            object.__setattr__(self, "penalty", float(self.penalty))

    def sets(self, probs: torch.Tensor) -> torch.Tensor:
        """Prediction sets for probabilities ``(N, num_classes)`` (`Task.probabilities`, calibrated).

        Returns:
            ``(N, num_classes)`` bool, True where the class is in the item's set. Each row depends only on that
            row of ``probs``: a batch gives the same sets as its items one by one.

        Raises:
            ConfigError: probs that do not fit (width, range, dtype).
        """
        probs = check_probs(probs, kind=self.kind, num_classes=self.num_classes)
        return all_scores(probs, method=self.method, penalty=self.penalty, k_reg=self.k_reg) <= self.qhat

    def describe(self) -> str:
        """One line for the training summary.

        Example:
            >>> ConformalSets(kind="multiclass", method="aps", level=0.9, qhat=0.9342, num_classes=10,
            ...               num_samples=500).describe()
            'APS prediction sets hold the true class for >= 90% of items (cutoff 0.934 from 500 validation items)'
        """
        kind = _KINDS[self.kind]
        if self.method == "raps":
            name = f"RAPS (penalty {self.penalty:g} past rank {self.k_reg})"
        elif self.method == "threshold":
            name = f"threshold (all {kind.members} with P >= {1 - self.qhat:.3g})"
        else:
            name = "APS"
        fitted = f" from {self.num_samples} validation items" if self.num_samples else ""
        cutoff = f"(cutoff {self.qhat:.3g}{fitted})"
        return f"{name} prediction sets hold {kind.covers} for >= {self.level * 100:.4g}% of items {cutoff}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return asdict(self) | {"kind": str(self.kind)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConformalSets:
        """Rebuild a ConformalSets written by `to_dict`.

        Raises:
            ConfigError: unknown fields (with the closest known name) or invalid values.
        """
        check_fields(data, [f.name for f in fields(cls)], what="ConformalSets")
        return cls(**data)


def fit_conformal(
    probs: torch.Tensor,
    targets: torch.Tensor,
    task: Task,
    *,
    level: float,
    method: str = "auto",
    penalty: float | None = None,
    k_reg: int | None = None,
) -> ConformalSets:
    """Fit split-conformal prediction sets on validation data (rules in the module docstring).

    Args:
        probs: ``(N, num_classes)`` float validation probabilities (`Task.probabilities` of calibrated logits).
        targets: ``task.encode(labels)`` for the same items.
        task: the Task.
        level: fraction of items whose set must hold the truth (multilabel: all true labels), in (0, 1).
        method: ``auto``, ``aps``, ``raps`` or ``threshold``; auto is aps (single-label) or threshold (multilabel).
        penalty: RAPS score per rank past ``k_reg``; None = `RAPS_PENALTY`.
        k_reg: RAPS ranks left unpenalised; None = read from the validation data.

    Returns:
        the fitted ConformalSets.

    Raises:
        ConfigError: a level outside (0, 1), an unknown method (with the closest name) or one the Task kind
            cannot use, RAPS parameters without RAPS, or probs that do not fit the Task.
        DataError: fewer validation items than `min_calibration_size` (level).
        LabelError: targets that do not fit the Task.

    Example:
        >>> task = Task(kind="multilabel", classes=("cloud", "haze", "road"))
        >>> probs = torch.tensor([[0.9, 0.2, 0.6], [0.7, 0.1, 0.2], [0.3, 0.8, 0.9], [0.6, 0.4, 0.1]])
        >>> targets = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0.0]])
        >>> conformal = fit_conformal(probs, targets, task, level=0.8)
        >>> round(conformal.qhat, 6)   # item scores 0.4, 0.3, 0.2, 0 (no label); the ceil(5 * 0.8) = 4th smallest
        0.4
        >>> conformal.sets(torch.tensor([[0.65, 0.5, 0.55]]))
        tensor([[ True, False, False]])
    """
    check_level(level)
    resolved = _resolve_method(method, task.kind)
    check_raps_params(resolved, penalty, k_reg, fitted=False)
    probs, truth = _validation_truth(probs, targets, task, level=level)
    if resolved == "raps":
        penalty = RAPS_PENALTY if penalty is None else penalty
        k_reg = _default_k_reg(probs, truth, level) if k_reg is None else k_reg
    scores = all_scores(probs, method=resolved, penalty=penalty, k_reg=k_reg)
    return ConformalSets(
        kind=task.kind,
        method=resolved,
        level=level,
        qhat=_qhat(scores, truth, level=level, kind=task.kind),
        num_classes=task.num_classes,
        penalty=penalty,
        k_reg=k_reg,
        num_samples=len(probs),
    )


def _validation_truth(
    probs: torch.Tensor, targets: torch.Tensor, task: Task, *, level: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The checked probabilities, and the truth ``(N, C)`` bool of enough validation items to fit ``level``."""
    probs = check_probs(probs, kind=task.kind, num_classes=task.num_classes)
    targets = check_targets(targets, kind=task.kind, num_classes=task.num_classes, num_samples=len(probs))
    check_enough(len(probs), level)
    return probs, _KINDS[task.kind].truth(targets, task.num_classes)


def _qhat(scores: torch.Tensor, truth: torch.Tensor, *, level: float, kind: TaskKind) -> float:
    """The cutoff: the ``ceil((n + 1) * level)``-th smallest item score."""
    # An item's score is its worst true class's; 0 (the lowest possible) for a multilabel item with no label.
    item_scores = torch.where(truth, scores, torch.zeros_like(scores)).amax(dim=1).cpu()
    rank = cutoff_rank(len(item_scores), level)
    qhat = torch.kthvalue(item_scores, rank).values.item()
    _warn_if_tied(item_scores, qhat, rank=rank, level=level, kind=kind)
    return qhat


def _warn_if_tied(item_scores: torch.Tensor, qhat: float, *, rank: int, level: float, kind: TaskKind) -> None:
    """Warn when scores tied at the cutoff make the sets cover far more of the validation items than ``level``."""
    covered = (item_scores <= qhat).double().mean().item()
    # Distinct scores put exactly ``rank`` items at or below the cutoff; more than that are ties at the cutoff.
    if covered <= rank / len(item_scores) + _TIE_SLACK:
        return
    tied = int((item_scores == qhat).sum().item())
    causes = "identical probability rows, such as outputs saturated at exactly 0 or 1"
    zero_causes = _KINDS[kind].zero_causes
    if qhat == 0 and zero_causes is not None:
        causes = zero_causes
    warnings.warn(
        DataWarning(
            f"{tied} of the {len(item_scores)} validation items score exactly the conformal cutoff {qhat:.4g} "
            f"({causes}); identical items get identical sets, so the sets cover {covered:.1%} of the validation "
            f"items where level {level:g} needs {level:.1%}. The guarantee holds but the sets are larger than "
            "needed; softer probabilities (a fitted temperature, a less overfit model) break the ties."
        ),
        stacklevel=4,  # the caller of fit_conformal
    )


def _default_k_reg(probs: torch.Tensor, truth: torch.Tensor, level: float) -> int:
    """The ``k``-th smallest 1-based rank of the true class: the top-k size covering ``level`` of the items."""
    order = torch.sort(probs, dim=1, descending=True, stable=True).indices
    ranks = truth.gather(1, order).long().argmax(dim=1) + 1
    return int(torch.kthvalue(ranks.cpu(), cutoff_rank(len(probs), level)).values.item())


def set_metrics(sets: torch.Tensor, targets: torch.Tensor, task: Task) -> dict[str, float]:
    """How prediction sets did against the truth.

    Args:
        sets: ``(N, num_classes)`` bool from `ConformalSets.sets`.
        targets: ``task.encode(labels)`` for the same items.
        task: the Task.

    Returns:
        ``set_coverage`` (fraction of items whose true class, multilabel: every true label, is in the set),
        ``mean_set_size`` and ``empty_set_rate``.

    Raises:
        ConfigError: sets that are not an ``(N, num_classes)`` bool tensor.
        LabelError: targets that do not fit the Task.

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> sets = torch.tensor([[True, True, False], [False, False, False], [False, False, True]])
        >>> set_metrics(sets, torch.tensor([1, 0, 2]), task)
        {'set_coverage': 0.6666666666666666, 'mean_set_size': 1.0, 'empty_set_rate': 0.3333333333333333}
    """
    if not isinstance(sets, torch.Tensor) or sets.dtype != torch.bool or tuple(sets.shape[1:]) != (task.num_classes,):
        found = f"{tuple(sets.shape)} {sets.dtype}" if isinstance(sets, torch.Tensor) else type(sets).__name__
        raise ConfigError(
            f"sets of {found} do not fit this {task.kind} Task: expected a (N, {task.num_classes}) bool tensor. "
            "Make them with `conformal.sets(probs)`."
        )
    targets = check_targets(targets, kind=task.kind, num_classes=task.num_classes, num_samples=len(sets))
    truth = _KINDS[task.kind].truth(targets, task.num_classes)
    sizes = sets.sum(dim=1).double()
    return {
        "set_coverage": (~(truth & ~sets).any(dim=1)).double().mean().item(),
        "mean_set_size": sizes.mean().item(),
        "empty_set_rate": (sizes == 0).double().mean().item(),
    }
