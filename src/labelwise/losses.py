"""Losses, chosen by the Task, and class balancing from training counts.

`loss_for(task)` is the only place a loss is built. The module it returns checks the logits' shape and
the targets' dtype against the Task before calling torch, so the classic mistakes (Long targets into
BCE, multi-hot targets into cross-entropy, a head of the wrong width) become one clear sentence instead
of a torch traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from labelwise._heads import HEADS
from labelwise._heads import IMBALANCE_RATIO as IMBALANCE_RATIO  # its home is light; `inspect` reads it there
from labelwise._kinds import TaskKind
from labelwise.errors import ConfigError, LabelError, format_examples

if TYPE_CHECKING:
    # Only for annotations: labelwise.task imports this module (`Task.loss`), so a runtime import would be a cycle.
    from labelwise.task import Task

__all__ = ["Balance", "TaskLoss", "infer_balance", "loss_for"]


class TaskLoss(nn.Module):
    """The Task's loss on ``(logits, targets)``; see `loss_for`."""

    def __init__(
        self,
        task: Task,
        *,
        pos_weight: torch.Tensor | None,
        class_weight: torch.Tensor | None,
        label_smoothing: float,
    ) -> None:
        super().__init__()
        self.task = task
        self.label_smoothing = label_smoothing
        self.register_buffer("pos_weight", pos_weight, persistent=False)
        self.register_buffer("class_weight", class_weight, persistent=False)

    pos_weight: torch.Tensor | None
    class_weight: torch.Tensor | None

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss over the batch.

        Args:
            logits: ``(N, task.head_width)`` raw head outputs.
            targets: ``task.encode(labels)``: ``(N,)`` or ``(N, C)`` of ``task.target_dtype``.
        """
        self._check(logits, targets)
        head = HEADS[self.task.head]
        return head.loss(logits, targets, getattr(self, head.weight), self.label_smoothing)

    def _check(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        task = self.task
        if logits.ndim != 2 or logits.shape[1] != task.head_width:
            raise ConfigError(
                f"the model outputs logits of shape {tuple(logits.shape)}, but this {task.kind} Task with "
                f"{task.num_classes} classes needs (N, {task.head_width}). Size the head with `task.head_width`."
            )
        expected_shape = (logits.shape[0], task.num_classes) if task.kind is TaskKind.MULTILABEL else (logits.shape[0],)
        if tuple(targets.shape) != expected_shape:
            raise LabelError(
                f"targets of shape {tuple(targets.shape)} do not fit this {task.kind} Task: expected {expected_shape}. "
                "Build targets with `task.encode(labels)`."
            )
        if targets.dtype != task.target_dtype:
            raise LabelError(
                f"{task.loss_name} for this {task.kind} Task needs {task.target_dtype} targets, got {targets.dtype}. "
                "Build targets with `task.encode(labels)` (or `.float()` / `.long()` them)."
            )


def loss_for(
    task: Task,
    *,
    pos_weight: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> TaskLoss:
    """Build the loss this Task trains with.

    Args:
        task: the Task.
        pos_weight: weight of positive targets for sigmoid losses, ``(task.head_width,)``: ``(1,)`` for one-logit
            binary, ``(C,)`` for multilabel and one-vs-rest.
        class_weight: per-class weight ``(C,)`` for cross-entropy losses (softmax heads: ``softmax``, ``ranked``,
            ``two_logits``).
        label_smoothing: in ``[0, 1)``; for sigmoid losses targets move toward 0.5.

    Example:
        >>> from labelwise.task import Task
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> loss_for(task)(torch.zeros(2, 1), task.encode(["no", "yes"]))
        tensor(0.6931)
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing={label_smoothing!r} must be in [0, 1).")
    takes = HEADS[task.head].weight
    if pos_weight is not None and takes != "pos_weight":
        raise ConfigError(
            f"pos_weight applies to sigmoid losses; this {task.kind} Task uses {task.loss_name}: pass class_weight."
        )
    if class_weight is not None and takes != "class_weight":
        raise ConfigError(
            f"class_weight applies to cross-entropy; this {task.kind} Task uses {task.loss_name}: pass pos_weight."
        )
    for name, weight, size in (
        ("pos_weight", pos_weight, task.head_width),
        ("class_weight", class_weight, task.num_classes),
    ):
        if weight is not None and tuple(weight.shape) != (size,):
            raise ConfigError(f"{name} has shape {tuple(weight.shape)}; this {task.kind} Task needs ({size},).")
    return TaskLoss(task, pos_weight=pos_weight, class_weight=class_weight, label_smoothing=label_smoothing)


@dataclass(frozen=True)
class Balance:
    """Loss weights inferred from training counts, and a sentence saying what was done and why."""

    pos_weight: torch.Tensor | None
    class_weight: torch.Tensor | None
    message: str


def infer_balance(targets: torch.Tensor, task: Task) -> Balance:
    """Weights that keep a strongly imbalanced loss from being minimised by the majority.

    Weighting starts at a majority:minority ratio of 10 (`IMBALANCE_RATIO`); below that the tuned decision
    threshold handles imbalance and the probabilities stay unbiased. Weights are the inverse class
    frequency (scikit-learn's ``class_weight="balanced"``); for sigmoid losses ``pos_weight = negatives / positives``.

    Args:
        targets: training targets from ``task.encode``.
        task: the Task.
    """
    counts = _class_counts(targets, task)
    head = HEADS[task.head]
    weight = head.balanced_weight(counts, len(targets)).to(torch.float32)
    if task.kind is TaskKind.MULTILABEL:
        # Per label: only the labels rarer than the ratio are weighted.
        heavy = weight >= IMBALANCE_RATIO
        if not heavy.any():
            return Balance(None, None, f"no label is rarer than 1:{IMBALANCE_RATIO:g}; no loss weights.")
        names = [task.classes[i] for i in heavy.nonzero().flatten().tolist()]
        return Balance(
            torch.where(heavy, weight, torch.ones_like(weight)),
            None,
            f"pos_weight = negatives/positives for {len(names)} labels rarer than 1:{IMBALANCE_RATIO:g} "
            f"({format_examples(names)}).",
        )
    imbalance = float(counts.max() / counts.clamp(min=1).min())
    if imbalance < IMBALANCE_RATIO:
        return Balance(
            None, None, f"class imbalance {imbalance:.1f}:1 is below {IMBALANCE_RATIO:g}:1; no loss weights."
        )
    message = f"class imbalance {imbalance:.1f}:1; weighting the loss by inverse class frequency ({head.weight})."
    pos_weight, class_weight = (weight, None) if head.weight == "pos_weight" else (None, weight)
    return Balance(pos_weight, class_weight, message)


def _class_counts(targets: torch.Tensor, task: Task) -> torch.Tensor:
    if task.kind is TaskKind.MULTILABEL:
        return targets.sum(dim=0).to(torch.float32)
    return torch.bincount(targets.long(), minlength=task.num_classes).to(torch.float32)
