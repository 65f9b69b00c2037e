"""Thresholds tuned on validation data for a metric (`labelwise.decide.objectives` lists the metrics).

Binary: one threshold on P(positive). Multiclass: argmax. Multilabel: one threshold per label.

The fallback rule: a multilabel label with fewer than ``min_count`` (default `MIN_COUNT` = 5) validation
positives, or fewer than ``min_count`` negatives, gets no threshold of its own (tuned on so few items it would
fit noise); it uses the *shared* threshold, tuned on all labels pooled (every (item, label) pair as one binary
problem). Binary validation data with fewer than ``min_count`` items of either class keeps 0.5, with a
`DataWarning` (as does the pooled threshold, in the rare case that all labels together are that short).

The held-out rule: a threshold tuned on these items always scores at least 0.5's on them, so unless
``held_out=False`` the whole tuning (thresholds, shrinkage) is re-run on bootstrap resamples of the validation items
and scored against 0.5 on the items each resample left out (`labelwise.decide._held_out`); when that mean gain is
not positive, 0.5 is kept (`DecisionRule.kept_default`, said in the train summary). Constrained metrics skip it.

The shrinkage rules: a binary threshold is pulled toward 0.5 by the same weight, ``n`` the rarer class's items
(`_toward_default`); a label's own threshold is pulled toward the shared one,
``t = t_shared + (t_own - t_shared) * n / (n + SHRINK_POSITIVES)`` with ``n`` its validation positives and
`SHRINK_POSITIVES` = 100, so a label with 100 validation positives moves halfway. A threshold tuned per label
fits that label's validation noise: on the multidigit demo (about 100 validation positives per label) unshrunk
per-label thresholds scored test micro-F1 0.970, shrunk ones 0.975, against 0.975 at 0.5. If the shrunk
thresholds score below the shared one on the pooled validation data, the shared one is used for every label.

Candidate thresholds are the midpoints between consecutive distinct validation probabilities (with 0 and 1 as
outer sentinels, so "all positive" and, unless an item has probability 1, "all negative" are candidates), plus
0.5. An item is positive when its probability is ``>= threshold``. All candidates are scored at once from one
sort and cumulative sums of the targets; among equally good candidates the one nearest 0.5 wins. Since 0.5 is a
candidate, a tuned threshold scores at least as well as 0.5 on the data it was tuned on.

Constrained metrics (``precision@recall:R``, ``recall@precision:P``) score a candidate that misses the
constraint as -inf. What holds instead of the above: if 0.5 meets the constraint, the tuned threshold meets it
too and scores at least as well as 0.5 on the tuning data; ``precision@recall:R`` can always be met (flagging
everything has recall 1). Where no candidate meets the constraint (``recall@precision:P`` with P above every
precision reached), the candidate with the largest constrained measure (the highest precision) is used, with a
`DataWarning`; `DecisionRule.tuned_score` is then None, as is ``default_score`` where 0.5 misses the constraint.
Multilabel: each label's own threshold meets the constraint on that label and the shared threshold on all labels
pooled. Shrinkage moves a label toward the shared threshold, which may take that label below the target on the
tuning data (as it trades the label's own optimum for less noise); the pooled constraint still holds whenever
the shared threshold meets it, since shrunk thresholds that miss it lose to the shared one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import torch

from labelwise._value_checks import check_probs, check_targets
from labelwise.decide._held_out import held_out_gain
from labelwise.decide._scoring import best_thresholds, rank, reported, score
from labelwise.decide.config import MIN_COUNT
from labelwise.decide.objectives import THRESHOLD_METRICS, ThresholdMetric, parse_metric
from labelwise.decide.rule import DecisionRule
from labelwise.errors import ConfigError, DataWarning
from labelwise.task import Task, TaskKind

__all__ = ["MIN_COUNT", "SHRINK_POSITIVES", "THRESHOLD_METRICS", "tune_thresholds"]

SHRINK_POSITIVES = 100.0


def tune_thresholds(
    probs: torch.Tensor,
    targets: torch.Tensor,
    task: Task,
    *,
    metric: str | ThresholdMetric = "f1",
    min_count: int = MIN_COUNT,
    held_out: bool = True,
    shrink: bool = False,
) -> DecisionRule:
    """Tune the decision rule on validation data for ``metric`` (rules in the module docstring).

    Args:
        probs: ``(N, num_classes)`` float validation probabilities (`Task.probabilities`).
        targets: ``task.encode(labels)`` for the same items.
        task: the Task.
        metric: a spec of `THRESHOLD_METRICS` (``f1``, ``fbeta:2``, ``precision@recall:0.9``, ``youden``, ...).
        min_count: fewest positive and negative validation items a label (binary: the task) needs to be tuned.
        held_out: keep 0.5 unless tuning beats it on the items bootstrap resamples leave out
            (`labelwise.decide._held_out`); False: the thresholds best on these items, whatever they gain.
        shrink: pull a binary threshold toward 0.5 by its rarer class's count (`_toward_default`); the
            decision policy of a run does.

    Returns:
        the DecisionRule; multiclass gets argmax.

    Raises:
        ConfigError: an unknown or malformed metric (with the closest name), or probs that do not fit the Task.
        LabelError: targets that do not fit the Task.

    Warns:
        DataWarning: too few items of a class to tune, or a constraint no threshold meets on the validation data.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> probs = torch.tensor([0.0625, 0.125, 0.25, 0.3125, 0.5625, 0.375, 0.4375, 0.625, 0.75, 0.8125, 0.875])
        >>> targets = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1.0])
        >>> both = torch.stack([1 - probs, probs], dim=1)
        >>> rule = tune_thresholds(both, targets, task)
        >>> rule.threshold, round(rule.tuned_score, 3), round(rule.default_score, 3), rule.kept_default
        (0.34375, 0.923, 0.727, False)
        >>> tune_thresholds(both, targets, task, metric="fbeta:0.5", held_out=False).threshold
        0.59375
        >>> tune_thresholds(both, targets, task, metric="fbeta:0.5").kept_default  # lost to 0.5 out of bag
        True
    """
    objective = parse_metric(metric)
    if not isinstance(min_count, int) or min_count < 0:
        raise ConfigError(f"min_count={min_count!r}; expected an integer >= 0 (default {MIN_COUNT}).")
    probs = check_probs(probs, kind=task.kind, num_classes=task.num_classes)
    targets = check_targets(targets, kind=task.kind, num_classes=task.num_classes, num_samples=len(probs))
    common: dict[str, Any] = {"classes": task.classes, "metric": str(objective), "num_samples": len(probs)}
    if task.kind is not TaskKind.MULTICLASS:  # binary targets are 0/1 per item, multilabel per (item, label)
        common["num_positives"] = int(targets.sum())
    return _TUNERS[task.kind](probs, targets, objective, common, min_count=min_count, held_out=held_out, shrink=shrink)


def _tune_multiclass(
    probs: torch.Tensor,
    targets: torch.Tensor,
    metric: ThresholdMetric,
    common: dict[str, Any],
    *,
    min_count: int,
    held_out: bool,
    shrink: bool,
) -> DecisionRule:
    return DecisionRule(kind=TaskKind.MULTICLASS, **common)  # argmax: nothing to tune


def _tune_binary(
    probs: torch.Tensor,
    targets: torch.Tensor,
    metric: ThresholdMetric,
    common: dict[str, Any],
    *,
    min_count: int,
    held_out: bool,
    shrink: bool,
) -> DecisionRule:
    # One threshold on P(positive): the positive column against (N, 1) targets, in float64 as every tuner.
    probs, targets = probs[:, 1:].double(), targets[:, None].double()
    threshold, gain = 0.5, None
    if _enough_or_warn(targets, min_count):
        best = best_thresholds(probs, targets, metric)
        threshold = _toward_default(best.thresholds, targets, metric, shrink=shrink).item()
        _warn_missed(metric, [("", best.reached.item())] if best.missed.item() else [])
        if held_out:
            gain = _gain_over_default(
                probs,
                targets,
                metric,
                tune=lambda p, t: _toward_default(best_thresholds(p, t, metric).thresholds, t, metric, shrink=shrink),
            )
    kept = gain is not None and gain <= 0.0
    threshold = 0.5 if kept else threshold
    return DecisionRule(
        kind=TaskKind.BINARY,
        threshold=threshold,
        tuned_score=reported(score(probs, targets, torch.tensor([threshold], dtype=torch.float64), metric)),
        default_score=reported(score(probs, targets, torch.tensor([0.5], dtype=torch.float64), metric)),
        held_out_gain=gain,
        kept_default=kept,
        **common,
    )


def _tune_multilabel(
    probs: torch.Tensor,
    targets: torch.Tensor,
    metric: ThresholdMetric,
    common: dict[str, Any],
    *,
    min_count: int,
    held_out: bool,
    shrink: bool,
) -> DecisionRule:
    probs, targets = probs.double(), targets.double()
    classes = common["classes"]
    thresholds, shared_threshold, own, missed = _multilabel_thresholds(probs, targets, metric, min_count=min_count)
    _warn_missed(metric, [(w if isinstance(w, str) else f"label {classes[w]!r}", r) for w, r in missed])

    def tune(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return _multilabel_thresholds(p, t, metric, min_count=min_count)[0]

    gain = _gain_over_default(probs, targets, metric, tune=tune) if held_out else None
    kept = gain is not None and gain <= 0.0
    if kept:
        thresholds = torch.full_like(thresholds, 0.5)
    pooled_probs, pooled_targets = probs.reshape(-1, 1), targets.reshape(-1, 1)
    return DecisionRule(
        kind=TaskKind.MULTILABEL,
        thresholds=tuple(thresholds.tolist()),
        shared_threshold=0.5 if kept else shared_threshold,
        shared_labels=tuple(classes[i] for i in (~own).nonzero().flatten().tolist()),
        tuned_score=reported(score(pooled_probs, pooled_targets, thresholds.expand_as(probs).reshape(-1), metric)),
        default_score=reported(score(pooled_probs, pooled_targets, torch.tensor([0.5]).double(), metric)),
        held_out_gain=gain,
        kept_default=kept,
        **common,
    )


def _multilabel_thresholds(
    probs: torch.Tensor, targets: torch.Tensor, metric: ThresholdMetric, *, min_count: int
) -> tuple[torch.Tensor, float, torch.Tensor, list[tuple[str | int, float]]]:
    """Per-label thresholds (shrunk toward the shared one), the shared threshold, which labels have their own, and
    the constraints missed (``"all labels pooled"`` or a label index, with the best measure reached)."""
    pooled_probs, pooled_targets = probs.reshape(-1, 1), targets.reshape(-1, 1)
    missed: list[tuple[str | int, float]] = []
    shared_threshold = 0.5
    if _enough_or_warn(pooled_targets, min_count):
        shared = best_thresholds(pooled_probs, pooled_targets, metric)
        shared_threshold = shared.thresholds.item()
        missed += [("all labels pooled", shared.reached.item())] if shared.missed.item() else []
    own = _enough(targets, min_count)
    thresholds, own_missed = _shrunk_thresholds(probs, targets, own, shared=shared_threshold, metric=metric)
    return thresholds, shared_threshold, own, missed + list(own_missed)


def _gain_over_default(
    probs: torch.Tensor,
    targets: torch.Tensor,
    metric: ThresholdMetric,
    *,
    tune: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float | None:
    """`held_out_gain` of this tuning over 0.5, pooled over labels; None for a constrained metric, whose target
    0.5 need not meet, so that beating 0.5 is not the question."""
    if metric.constraint is not None:
        return None

    def pooled(p: torch.Tensor, t: torch.Tensor, thresholds: torch.Tensor) -> float:
        return score(p.reshape(-1, 1), t.reshape(-1, 1), thresholds.expand_as(p).reshape(-1), metric)

    half = torch.full((probs.shape[1],), 0.5, dtype=torch.float64)
    return held_out_gain(probs, targets, tune=tune, score=pooled, default=half)


class _Tuner(Protocol):
    def __call__(
        self,
        probs: torch.Tensor,
        targets: torch.Tensor,
        metric: ThresholdMetric,
        common: dict[str, Any],
        *,
        min_count: int,
        held_out: bool,
        shrink: bool,
    ) -> DecisionRule: ...


# Checked (N, C) probs and the targets -> the kind's rule.
_TUNERS: dict[TaskKind, _Tuner] = {
    TaskKind.BINARY: _tune_binary,
    TaskKind.MULTICLASS: _tune_multiclass,
    TaskKind.MULTILABEL: _tune_multilabel,
}


def _shrunk_thresholds(
    probs: torch.Tensor, targets: torch.Tensor, own: torch.Tensor, *, shared: float, metric: ThresholdMetric
) -> tuple[torch.Tensor, list[tuple[int, float]]]:
    """Per-label thresholds shrunk toward ``shared`` (the module docstring's rule); ``shared`` where not ``own``.

    Also returns (label index, best constrained measure) of each own label whose constraint no threshold met.
    """
    everywhere = torch.full((probs.shape[1],), shared, dtype=torch.float64)
    if not own.any():
        return everywhere, []
    thresholds = everywhere.clone()
    best = best_thresholds(probs[:, own], targets[:, own], metric)
    weight = targets[:, own].sum(dim=0) / (targets[:, own].sum(dim=0) + SHRINK_POSITIVES)
    thresholds[own] = shared + (best.thresholds - shared) * weight
    labels = own.nonzero().flatten().tolist()
    missed = [(j, r) for j, m, r in zip(labels, best.missed, best.reached.tolist(), strict=True) if m]
    pooled_probs, pooled_targets = probs.reshape(-1, 1), targets.reshape(-1, 1)
    shrunk = rank(pooled_probs, pooled_targets, thresholds.expand_as(probs).reshape(-1), metric)
    alone = rank(pooled_probs, pooled_targets, everywhere.expand_as(probs).reshape(-1), metric)
    return (thresholds if shrunk >= alone else everywhere), missed


def _toward_default(
    threshold: torch.Tensor, targets: torch.Tensor, metric: ThresholdMetric, *, shrink: bool
) -> torch.Tensor:
    """The binary threshold pulled toward 0.5, ``0.5 + (t - 0.5) * n / (n + SHRINK_POSITIVES)`` with ``n`` the
    rarer class's tuning items: the shrinkage a multilabel label's threshold gets toward the shared one.

    The held-out check alone let thresholds tuned on few positives through: on breast cancer with 90 % of the
    malignant rows removed, cross-fitted (16 positives out of fold), tuned thresholds of 0.06-0.24 lost up to 0.14
    test F1 to 0.5 in 2 of 6 seeds; shrunk, none lost (6 seeds of that table, pima, titanic and phishing: worst
    -0.004). Constrained metrics keep their threshold: moving it could break the constraint.
    """
    if not shrink or metric.constraint is not None:
        return threshold
    n = min(float(targets.sum()), float(targets.numel() - targets.sum()))
    return 0.5 + (threshold - 0.5) * (n / (n + SHRINK_POSITIVES))


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


def _warn_missed(metric: ThresholdMetric, missed: list[tuple[str, float]]) -> None:
    """One DataWarning naming each (where, best constrained measure) whose constraint no threshold met."""
    if not missed:
        return
    measure = (metric.constraint or "").split(" ")[0]
    # Rounded down, so that a best of 0.9996 against a target of 1 does not read as 1.
    reached = [f"{math.floor(value * 1000) / 1000:g}" + (f" for {where}" if where else "") for where, value in missed]
    listed = ", ".join(reached[:5]) + (f" and {len(reached) - 5} more" if len(reached) > 5 else "")
    lower = math.floor(min(value for _, value in missed) * 100) / 100
    example = f", e.g. `--metric {ThresholdMetric(metric.name, lower)}`" if lower > 0 else ""
    warnings.warn(
        DataWarning(
            f"no threshold reaches {metric.constraint} on the validation data, so `--metric {metric}` cannot be "
            f"met (best {measure}: {listed}); the threshold with the highest {measure} is used instead. Lower "
            f"the target{example}, or use a larger validation split or a better model."
        ),
        stacklevel=4,
    )
