"""Seeded factories shared by the tests: `from _factories import make_batch, make_task, KINDS`."""

from __future__ import annotations

import pytest
import torch

from labelwise.task import Task, TaskKind

KINDS = [pytest.param(kind, id=str(kind)) for kind in TaskKind]

_CLASSES = {
    TaskKind.BINARY: ("benign", "malignant"),
    TaskKind.MULTICLASS: ("bird", "cat", "dog", "fish"),
    TaskKind.MULTILABEL: ("cloud", "haze", "road", "water"),
}


def make_task(kind: TaskKind | str) -> Task:
    """A small Task of the given kind with string classes."""
    kind = TaskKind(kind)
    return Task(kind=kind, classes=_CLASSES[kind])


def make_batch(kind: TaskKind | str, *, seed: int = 0, n: int = 64) -> tuple[Task, torch.Tensor, torch.Tensor]:
    """A Task, logits ``(n, head_width)`` and targets of the Task's dtype, all seeded.

    Multilabel targets include empty rows; every class appears at least once.
    """
    task = make_task(kind)
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, task.head_width, generator=gen) * 2
    if task.kind is TaskKind.MULTILABEL:
        targets = (torch.rand(n, task.num_classes, generator=gen) < 0.35).float()
        targets[0] = 0.0
        targets[1 : 1 + task.num_classes] = torch.eye(task.num_classes)
    else:
        targets = torch.randint(0, task.num_classes, (n,), generator=gen)
        targets[: task.num_classes] = torch.arange(task.num_classes)
        targets = targets.to(task.target_dtype)
    return task, logits, targets
