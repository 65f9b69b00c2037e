"""Decision rules: how probabilities become decisions, with thresholds tuned on validation data.

Binary: one threshold on P(positive). Multiclass: argmax. Multilabel: one threshold per label.

The fallback rule: a multilabel label with fewer than ``min_count`` (default `MIN_COUNT` = 5) validation
positives, or fewer than ``min_count`` negatives, gets no threshold of its own (tuned on so few items it would
fit noise); it uses the *shared* threshold, tuned on all labels pooled (every (item, label) pair as one binary
problem). Binary validation data with fewer than ``min_count`` items of either class keeps 0.5, with a
`DataWarning` (as does the pooled threshold, in the rare case that all labels together are that short).

The shrinkage rule: a label's own threshold is pulled toward the shared one,
``t = t_shared + (t_own - t_shared) * n / (n + SHRINK_POSITIVES)`` with ``n`` its validation positives and
`SHRINK_POSITIVES` = 100, so a label with 100 validation positives moves halfway. A threshold tuned per label
fits that label's validation noise: on the multidigit demo (about 100 validation positives per label) unshrunk
per-label thresholds scored test micro-F1 0.970, shrunk ones 0.975, against 0.975 at 0.5. If the shrunk
thresholds score below the shared one on the pooled validation data, the shared one is used for every label.

Candidate thresholds are the midpoints between consecutive distinct validation probabilities (with 0 and 1 as
outer sentinels, so "all positive" and "all negative" are candidates), plus 0.5. An item is positive when its
probability is ``>= threshold``. All candidates are scored at once from one sort and cumulative sums of the
targets; among equally good candidates the one nearest 0.5 wins. Since 0.5 is a candidate, a tuned threshold
scores at least as well as 0.5 on the data it was tuned on.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from labelwise.errors import ConfigError, DataWarning, format_examples
from labelwise.metrics import check_probs, check_targets
from labelwise.task import Label, Task, TaskKind

__all__ = ["MIN_COUNT", "SHRINK_POSITIVES", "THRESHOLD_METRICS", "DecisionRule", "tune_thresholds"]

MIN_COUNT = 5
SHRINK_POSITIVES = 100.0
# Columns of probabilities scored per chunk: bounds the (N + 1, chunk) float64 count matrices to ~32 MB each.
_CHUNK_ELEMENTS = 4_000_000
# Scores within this of the best are ties (balanced accuracy adds two divisions, so equal ratios may differ by an ulp).
_TIE = 1e-12

_Counts = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # 0 where undefined, like sklearn's zero_division=0 (F1 with nothing to find and nothing found, ...).
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def _accuracy(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
    return (tp + tn) / (tp + fp + fn + tn)


def _balanced_accuracy(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
    # sklearn averages the recall of the classes present in the targets only.
    present = (tp + fn > 0).double() + (tn + fp > 0).double()
    return _safe_div(_safe_div(tp, tp + fn) + _safe_div(tn, tn + fp), present)


def _mcc(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
    return _safe_div(tp * tn - fp * fn, ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt())


# precision and recall alone are not offered: each is maximised by a degenerate threshold (flag one item / all).
THRESHOLD_METRICS: dict[str, _Counts] = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1": _f1,
    "mcc": _mcc,
}


@dataclass(frozen=True, kw_only=True)
class DecisionRule:
    """How probabilities become decisions; `tune_thresholds` fits one, `DecisionRule.default` is 0.5 / argmax.

    Args:
        kind: the Task kind.
        classes: the Task's classes (to name them in `describe`).
        threshold: binary: P(positive) at or above which an item is positive.
        thresholds: multilabel: one threshold per label, in `classes` order.
        metric: the metric the thresholds were tuned for (None: not tuned).
        shared_threshold: multilabel: the threshold tuned on all labels pooled.
        shared_labels: multilabel: labels too rare to tune that use `shared_threshold`.
        num_samples: number of validation items tuned on.
        tuned_score: the metric on the tuning data with these thresholds (multilabel: all labels pooled).
        default_score: the same metric with threshold 0.5.

    Example:
        >>> rule = DecisionRule(kind="binary", classes=("benign", "malignant"), threshold=0.3)
        >>> rule.decide(torch.tensor([[0.8, 0.2], [0.6, 0.4]]))
        tensor([0, 1])
    """

    kind: TaskKind
    classes: tuple[Label, ...]
    threshold: float | None = None
    thresholds: tuple[float, ...] | None = None
    metric: str | None = None
    shared_threshold: float | None = None
    shared_labels: tuple[Label, ...] = ()
    num_samples: int = 0
    tuned_score: float | None = None
    default_score: float | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", TaskKind(self.kind))
        except ValueError:
            raise ConfigError(f"kind={self.kind!r}; expected binary, multiclass or multilabel.") from None
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "shared_labels", tuple(self.shared_labels))
        try:
            for name in ("threshold", "shared_threshold"):
                if getattr(self, name) is not None:
                    object.__setattr__(self, name, float(getattr(self, name)))
            if self.thresholds is not None:
                object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        except (TypeError, ValueError):
            raise ConfigError(
                f"thresholds must be numbers in [0, 1], got threshold={self.threshold!r}, "
                f"thresholds={self.thresholds!r}. Use `DecisionRule.default(task)` or `tune_thresholds`."
            ) from None
        if self.metric is not None:
            _check_metric(self.metric)
        self._check_thresholds()

    def _check_thresholds(self) -> None:
        wants = {TaskKind.BINARY: "threshold", TaskKind.MULTILABEL: "thresholds", TaskKind.MULTICLASS: None}[self.kind]
        given = [name for name in ("threshold", "thresholds") if getattr(self, name) is not None]
        if given != ([wants] if wants else []):
            raise ConfigError(
                f"a {self.kind} DecisionRule takes {f'`{wants}`' if wants else 'no threshold (argmax)'}, got "
                f"{', '.join(f'`{g}`' for g in given) or 'none'}. "
                "Use `DecisionRule.default(task)` or `tune_thresholds`."
            )
        values = [self.threshold] if self.threshold is not None else list(self.thresholds or ())
        if self.kind is TaskKind.MULTILABEL and len(values) != len(self.classes):
            raise ConfigError(f"{len(values)} thresholds for {len(self.classes)} labels; expected one per label.")
        bad = [v for v in values + [self.shared_threshold or 0.5] if not 0.0 <= v <= 1.0]
        if bad:
            raise ConfigError(f"thresholds must lie in [0, 1], got {format_examples(bad)}.")

    @classmethod
    def default(cls, task: Task) -> DecisionRule:
        """The untuned rule: threshold 0.5 (binary, each label of multilabel) or argmax (multiclass)."""
        return cls(
            kind=task.kind,
            classes=task.classes,
            threshold=0.5 if task.kind is TaskKind.BINARY else None,
            thresholds=(0.5,) * task.num_classes if task.kind is TaskKind.MULTILABEL else None,
        )

    def decide(self, probs: torch.Tensor) -> torch.Tensor:
        """Decisions from probabilities ``(N, num_classes)`` (`Task.probabilities`).

        Returns:
            binary and multiclass: ``(N,)`` long class indices; multilabel: ``(N, C)`` bool.
        """
        probs = check_probs(probs, kind=self.kind, num_classes=len(self.classes))
        if self.kind is TaskKind.MULTICLASS:
            return probs.argmax(dim=1)
        # float64, the precision the thresholds were tuned in: a midpoint between two float32 probabilities
        # may round onto one of them in float32 and flip that item.
        if self.kind is TaskKind.BINARY:
            threshold = self.threshold if self.threshold is not None else 0.5  # set for binary by __post_init__
            return (probs[:, 1].double() >= threshold).long()
        return probs.double() >= torch.tensor(self.thresholds, dtype=torch.float64, device=probs.device)

    def describe(self) -> str:
        """One line for the training summary.

        Example:
            >>> DecisionRule(kind="binary", classes=("benign", "malignant"), threshold=0.37, metric="f1",
            ...              num_samples=114).describe()
            "threshold 0.37 on P('malignant'), tuned for f1 on 114 validation items"
        """
        tuned = f", tuned for {self.metric} on {self.num_samples} validation items" if self.metric else " (not tuned)"
        gain = ""
        if self.tuned_score is not None and self.default_score is not None:
            gain = f" ({self.metric} {self.tuned_score:.3f} vs {self.default_score:.3f} at 0.5)"
        if self.kind is TaskKind.MULTICLASS:
            return f"argmax over {len(self.classes)} classes"
        if self.kind is TaskKind.BINARY:
            return f"threshold {self.threshold:.3g} on P({self.classes[1]!r}){tuned}{gain}"
        values = self.thresholds or ()
        spread = f"{min(values):.3g}" if min(values) == max(values) else f"{min(values):.3g}-{max(values):.3g}"
        shared = ""
        if self.shared_labels:
            shared = (
                f"; {len(self.shared_labels)} rare labels ({format_examples(self.shared_labels, limit=3)}) "
                f"use the shared {self.shared_threshold:.3g}"
            )
        return f"per-label thresholds {spread}{tuned}{gain}{shared}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        data = asdict(self)
        data |= {"kind": str(self.kind), "classes": list(self.classes), "shared_labels": list(self.shared_labels)}
        data["thresholds"] = None if self.thresholds is None else list(self.thresholds)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionRule:
        """Rebuild a DecisionRule written by `to_dict`."""
        known = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in known]
        if unknown:
            hints = {key: difflib.get_close_matches(key, known, n=1) for key in unknown}
            listed = ", ".join(f"{k!r}" + (f" (did you mean {m[0]!r}?)" if m else "") for k, m in hints.items())
            raise ConfigError(f"unknown DecisionRule fields {listed}; expected some of {', '.join(known)}.")
        return cls(**data)


def tune_thresholds(
    probs: torch.Tensor, targets: torch.Tensor, task: Task, *, metric: str = "f1", min_count: int = MIN_COUNT
) -> DecisionRule:
    """Tune the decision rule on validation data for ``metric`` (rules in the module docstring).

    Args:
        probs: ``(N, num_classes)`` float validation probabilities (`Task.probabilities`).
        targets: ``task.encode(labels)`` for the same items.
        task: the Task.
        metric: one of `THRESHOLD_METRICS`: ``f1``, ``accuracy``, ``balanced_accuracy``, ``mcc``.
        min_count: fewest positive and negative validation items a label (binary: the task) needs to be tuned.

    Returns:
        the DecisionRule; multiclass gets argmax.

    Raises:
        ConfigError: an unknown metric (with the closest name), or probs that do not fit the Task.
        LabelError: targets that do not fit the Task.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> probs = torch.tensor([0.0625, 0.125, 0.25, 0.3125, 0.5625, 0.375, 0.4375, 0.625, 0.75, 0.8125, 0.875])
        >>> targets = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1.0])
        >>> rule = tune_thresholds(torch.stack([1 - probs, probs], dim=1), targets, task)
        >>> rule.threshold, round(rule.tuned_score, 3), round(rule.default_score, 3)
        (0.34375, 0.923, 0.727)
    """
    _check_metric(metric)
    if not isinstance(min_count, int) or min_count < 0:
        raise ConfigError(f"min_count={min_count!r}; expected an integer >= 0 (default {MIN_COUNT}).")
    probs = check_probs(probs, kind=task.kind, num_classes=task.num_classes)
    targets = check_targets(targets, kind=task.kind, num_classes=task.num_classes, num_samples=len(probs))
    common: dict[str, Any] = {"classes": task.classes, "metric": metric, "num_samples": len(probs)}
    if task.kind is TaskKind.MULTICLASS:
        return DecisionRule(kind=task.kind, **common)
    if task.kind is TaskKind.BINARY:
        return _tune_binary(probs[:, 1:].double(), targets[:, None].double(), common, min_count=min_count)
    return _tune_multilabel(probs.double(), targets.double(), common, min_count=min_count)


def _tune_binary(probs: torch.Tensor, targets: torch.Tensor, common: dict[str, Any], *, min_count: int) -> DecisionRule:
    metric = common["metric"]
    threshold = _best_thresholds(probs, targets, metric).item() if _enough_or_warn(targets, min_count) else 0.5
    return DecisionRule(
        kind=TaskKind.BINARY,
        threshold=threshold,
        tuned_score=_score(probs, targets, torch.tensor([threshold], dtype=torch.float64), metric),
        default_score=_score(probs, targets, torch.tensor([0.5], dtype=torch.float64), metric),
        **common,
    )


def _tune_multilabel(
    probs: torch.Tensor, targets: torch.Tensor, common: dict[str, Any], *, min_count: int
) -> DecisionRule:
    metric, classes = common["metric"], common["classes"]
    pooled_probs, pooled_targets = probs.reshape(-1, 1), targets.reshape(-1, 1)
    enough = _enough_or_warn(pooled_targets, min_count)
    shared_threshold = _best_thresholds(pooled_probs, pooled_targets, metric).item() if enough else 0.5
    own = _enough(targets, min_count)
    thresholds = _shrunk_thresholds(probs, targets, own, shared=shared_threshold, metric=metric)
    return DecisionRule(
        kind=TaskKind.MULTILABEL,
        thresholds=tuple(thresholds.tolist()),
        shared_threshold=shared_threshold,
        shared_labels=tuple(classes[i] for i in (~own).nonzero().flatten().tolist()),
        tuned_score=_score(pooled_probs, pooled_targets, thresholds.expand_as(probs).reshape(-1), metric),
        default_score=_score(pooled_probs, pooled_targets, torch.tensor([0.5], dtype=torch.float64), metric),
        **common,
    )


def _shrunk_thresholds(
    probs: torch.Tensor, targets: torch.Tensor, own: torch.Tensor, *, shared: float, metric: str
) -> torch.Tensor:
    """Per-label thresholds shrunk toward ``shared`` (the module docstring's rule); ``shared`` where not ``own``."""
    everywhere = torch.full((probs.shape[1],), shared, dtype=torch.float64)
    if not own.any():
        return everywhere
    thresholds = everywhere.clone()
    weight = targets[:, own].sum(dim=0) / (targets[:, own].sum(dim=0) + SHRINK_POSITIVES)
    thresholds[own] = shared + (_best_thresholds(probs[:, own], targets[:, own], metric) - shared) * weight
    pooled_probs, pooled_targets = probs.reshape(-1, 1), targets.reshape(-1, 1)
    shrunk_score = _score(pooled_probs, pooled_targets, thresholds.expand_as(probs).reshape(-1), metric)
    shared_score = _score(pooled_probs, pooled_targets, everywhere.expand_as(probs).reshape(-1), metric)
    return thresholds if shrunk_score >= shared_score else everywhere


def _enough_or_warn(targets: torch.Tensor, min_count: int) -> bool:
    """Whether one column of 0/1 ``targets`` ``(N, 1)`` can be tuned on; warns when not."""
    if _enough(targets, min_count).item():
        return True
    positives = int(targets.sum().item())
    warnings.warn(
        DataWarning(
            f"the validation data holds {positives} positive and {targets.numel() - positives} negative items; "
            f"tuning a threshold needs at least {max(min_count, 1)} of each, so it stays 0.5. Use a larger "
            "validation split for a tuned threshold."
        ),
        stacklevel=4,
    )
    return False


def _enough(targets: torch.Tensor, min_count: int) -> torch.Tensor:
    """Per column: at least ``min_count`` positives and negatives, and at least one of each."""
    positives = targets.sum(dim=0)
    need = max(min_count, 1)
    return (positives >= need) & (len(targets) - positives >= need)


def _score(probs: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor, metric: str) -> float:
    """``metric`` of the decisions ``probs >= thresholds`` over all entries pooled."""
    predicted = (probs.reshape(-1) >= thresholds).double()
    truth = targets.reshape(-1)
    tp = (predicted * truth).sum()
    fp, fn = predicted.sum() - tp, truth.sum() - tp
    return THRESHOLD_METRICS[metric](tp, fp, fn, len(truth) - tp - fp - fn).item()


def _best_thresholds(probs: torch.Tensor, targets: torch.Tensor, metric: str) -> torch.Tensor:
    """Best threshold per column of ``probs`` ``(N, K)`` float64 against 0/1 ``targets``; ``(K,)``."""
    chunk = max(1, _CHUNK_ELEMENTS // (len(probs) + 1))
    return torch.cat(
        [
            _best_in_chunk(probs[:, i : i + chunk], targets[:, i : i + chunk], metric)
            for i in range(0, probs.shape[1], chunk)
        ]
    )


def _best_in_chunk(probs: torch.Tensor, targets: torch.Tensor, metric: str) -> torch.Tensor:
    n, k = probs.shape
    score_of = THRESHOLD_METRICS[metric]
    sorted_probs, order = torch.sort(probs, dim=0, descending=True)
    # Cut c predicts the c most probable items positive; tp[c] counts the positives among them.
    zeros = torch.zeros(1, k, dtype=torch.float64)
    tp = torch.cat([zeros, torch.cumsum(targets.gather(0, order), dim=0)])
    predicted = torch.arange(n + 1, dtype=torch.float64)[:, None]
    positives = tp[-1:]
    scores = score_of(tp, predicted - tp, positives - tp, n - positives - predicted + tp)
    above = torch.cat([torch.ones(1, k, dtype=torch.float64), sorted_probs])  # sentinel 1 before the top item
    below = torch.cat([sorted_probs, zeros])  # sentinel 0 after the last
    cuts = (above + below) / 2
    # A cut between equal probabilities cannot be made (ties go together); `below < cut` also drops a midpoint
    # that rounds onto `below`, where `>=` would flip the item below it.
    scores = torch.where(below < cuts, scores, torch.full_like(scores, -torch.inf))
    half = probs >= 0.5
    tp_half = (half * targets).sum(dim=0, keepdim=True)
    predicted_half = half.sum(dim=0, keepdim=True).double()
    fp_half = predicted_half - tp_half
    half_scores = score_of(tp_half, fp_half, positives - tp_half, n - positives - fp_half)
    cuts = torch.cat([cuts, torch.full((1, k), 0.5, dtype=torch.float64)])
    scores = torch.cat([scores, half_scores])
    # Ties go to the candidate nearest 0.5 (then the lower one): the least surprising of equally good rules.
    near_best = scores >= scores.max(dim=0, keepdim=True).values - _TIE
    distance = torch.where(near_best, (cuts - 0.5).abs(), torch.full_like(cuts, torch.inf))
    closest = distance == distance.min(dim=0, keepdim=True).values
    return torch.where(closest, cuts, torch.full_like(cuts, torch.inf)).min(dim=0).values


def _check_metric(metric: str) -> None:
    if metric not in THRESHOLD_METRICS:
        close = difflib.get_close_matches(str(metric), THRESHOLD_METRICS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"metric={metric!r} cannot tune a decision threshold; expected one of "
            f"{', '.join(THRESHOLD_METRICS)}.{hint} (precision or recall alone are maximised by flagging one item "
            "or all of them; use f1.)"
        )
