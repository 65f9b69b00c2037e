"""Checks of the tensors that metrics and decisions read: probabilities, targets and decisions of the right shape,
dtype and range for a Task kind, each refused with what was found and what was expected.

Kept apart from `labelwise.metrics` so that deciding (`labelwise.decide`) does not import scikit-learn.
"""

from __future__ import annotations

import torch

from labelwise.errors import ConfigError, DataError, LabelError, format_rows
from labelwise.task import TaskKind

__all__ = ["check_decisions", "check_probs", "check_targets"]


def check_probs(probs: torch.Tensor, *, kind: TaskKind | str, num_classes: int) -> torch.Tensor:
    """Check class probabilities ``(N, num_classes)`` float in [0, 1] and return them detached.

    Raises:
        ConfigError: not a 2-d float tensor of that width, non-finite values, or values outside [0, 1]
            (logits passed where probabilities belong).
        DataError: no rows.
    """
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        found = f"{type(probs).__name__}" + (f" of dtype {probs.dtype}" if isinstance(probs, torch.Tensor) else "")
        raise ConfigError(f"probs must be a float tensor, got {found}. Pass `task.probabilities(logits)`.")
    if probs.ndim != 2 or probs.shape[1] != num_classes:
        raise ConfigError(
            f"probs of shape {tuple(probs.shape)} do not fit this {kind} Task with {num_classes} classes: expected "
            f"(N, {num_classes}), one column per class (binary too). Pass `task.probabilities(logits)`."
        )
    if probs.shape[0] == 0:
        raise DataError("no items to score (probs has 0 rows); expected at least one. Check the evaluation data.")
    probs = probs.detach()
    bad = ~(torch.isfinite(probs) & (probs >= 0) & (probs <= 1)).all(dim=1)
    if bad.any():
        rows = bad.nonzero().flatten().tolist()
        raise ConfigError(
            f"probs must lie in [0, 1]; {format_rows(rows)} hold values outside it (min {probs.min().item():.4g}, "
            f"max {probs.max().item():.4g}). These look like logits: pass `task.probabilities(logits)`."
        )
    return probs


def check_targets(targets: torch.Tensor, *, kind: TaskKind | str, num_classes: int, num_samples: int) -> torch.Tensor:
    """Check targets as `Task.encode` makes them and return them as long tensors.

    Any numeric dtype is accepted (binary targets are float for one logit, long for two).

    Returns:
        binary and multiclass: ``(N,)`` long class indices; multilabel: ``(N, C)`` long 0/1.

    Raises:
        LabelError: wrong shape, or values that are not class indices (0/1 for binary and multilabel).
    """
    kind = TaskKind(kind)
    expected = (num_samples, num_classes) if kind is TaskKind.MULTILABEL else (num_samples,)
    if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != expected:
        found = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise LabelError(
            f"targets of shape {found} do not fit this {kind} Task and {num_samples} rows of probs: expected "
            f"{expected}. Build targets with `task.encode(labels)` for the same items as the probs."
        )
    targets = targets.detach()
    high = 1 if kind is not TaskKind.MULTICLASS else num_classes - 1
    if targets.is_floating_point():
        bad_values = ~torch.isfinite(targets) | (targets != targets.round()) | (targets < 0) | (targets > high)
    else:
        bad_values = (targets.long() < 0) | (targets.long() > high)
    bad = bad_values.reshape(num_samples, -1).any(dim=1)
    if bad.any():
        rows = bad.nonzero().flatten().tolist()
        raise LabelError(
            f"{kind} targets must be integers in [0, {high}]; {format_rows(rows)} hold other values. "
            "Build targets with `task.encode(labels)`."
        )
    return targets.long()


def check_decisions(
    decisions: torch.Tensor, *, kind: TaskKind | str, num_classes: int, num_samples: int
) -> torch.Tensor:
    """Check decisions as `DecisionRule.decide` makes them and return them as long tensors.

    Returns:
        binary and multiclass: ``(N,)`` long class indices, ``-1`` = abstained; multilabel ``(N, C)`` long 0/1.

    Raises:
        ConfigError: wrong shape or values.
    """
    kind = TaskKind(kind)
    multilabel = kind is TaskKind.MULTILABEL
    expected = (num_samples, num_classes) if multilabel else (num_samples,)
    low, high = (0, 1) if multilabel else (-1, num_classes - 1)
    if not isinstance(decisions, torch.Tensor) or tuple(decisions.shape) != expected:
        found = tuple(decisions.shape) if isinstance(decisions, torch.Tensor) else type(decisions).__name__
        raise ConfigError(
            f"decisions of shape {found} do not fit this {kind} Task and {num_samples} rows of probs: expected "
            f"{expected}. Make them with `rule.decide(probs)`."
        )
    decisions = decisions.detach()
    if decisions.is_floating_point() or ((decisions < low) | (decisions > high)).any():
        raise ConfigError(
            f"{kind} decisions must be integers (or bools) in [{low}, {high}], got dtype {decisions.dtype} with "
            f"values in [{decisions.min().item()}, {decisions.max().item()}]. Make them with `rule.decide(probs)`."
        )
    return decisions.long()
