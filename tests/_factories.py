"""Seeded factories shared by the tests: `from _factories import make_batch, make_task, KINDS`."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def make_table(n: int, *, seed: int = 0, second: str = "x1", missing_colors: bool = False) -> pd.DataFrame:
    """Two numeric features (``x0`` with missing values, ``second``), a categorical ``color``, one target per kind.

    The targets ``binary``, ``multiclass`` and ``multilabel`` (delimited, some empty) are learnable from the features.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    color = rng.choice(np.array(["red", "green", "blue"], dtype=object), n)
    score = x[:, 0] + (color == "red") - 0.5 * x[:, 1]
    frame = pd.DataFrame({"x0": x[:, 0], second: x[:, 1], "color": color})
    frame.loc[::9, "x0"] = np.nan
    if missing_colors:
        frame.loc[::13, "color"] = None
    frame["binary"] = np.where(score > 0.3, "yes", "no")
    frame["multiclass"] = np.array(["a", "b", "c"])[np.digitize(score, [-0.4, 0.8])]
    tags = [("p", score > 0), ("q", x[:, 1] > 0)]
    frame["multilabel"] = [" ".join(tag for tag, on in tags if on[i]) for i in range(n)]
    return frame
