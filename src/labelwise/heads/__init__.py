"""The head interface (`Head`) and its two implementations; `create_head` picks one for a trained network."""

from __future__ import annotations

from torch import nn

from labelwise.heads.base import Fitted, Head, HeadOutputs, Truth
from labelwise.heads.dense import DenseHead
from labelwise.heads.ranked import RankedHead
from labelwise.task import HeadType, Task

__all__ = ["DenseHead", "Fitted", "Head", "HeadOutputs", "RankedHead", "Truth", "create_head"]


# The head types whose later stages differ from the dense ones; every other head type is dense.
_HEADS: dict[HeadType, type[Head]] = {HeadType.RANKED: RankedHead}


def create_head(task: Task, network: nn.Module) -> Head:
    """The `Head` over ``network``'s last layer, from the Task's head type: `RankedHead` for ``ranked``, else
    `DenseHead`. The one place that reads which implementation a run needs.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> type(create_head(task, nn.Linear(3, 1))).__name__
        'DenseHead'
    """
    return _HEADS.get(task.head, DenseHead)(task, network)
