"""The head interface (`Head`) and its two implementations; `create_head` picks one for a trained network."""

from __future__ import annotations

from torch import nn

from labelwise.heads.base import Fitted, Head, HeadOutputs, Truth
from labelwise.heads.dense import DenseHead
from labelwise.heads.ranked import RankedHead
from labelwise.task import Task

__all__ = ["DenseHead", "Fitted", "Head", "HeadOutputs", "RankedHead", "Truth", "create_head"]


def create_head(task: Task, network: nn.Module, *, ranked: bool) -> Head:
    """The `Head` over ``network``'s last layer: `RankedHead` for a softmax ranked in class chunks, else `DenseHead`.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> type(create_head(task, nn.Linear(3, 1), ranked=False)).__name__
        'DenseHead'
    """
    return RankedHead(task, network) if ranked else DenseHead(task, network)
