"""labelwise: binary, multiclass and multilabel classifiers on PyTorch, right by construction."""

from labelwise.task import Task as Task
from labelwise.task import TaskKind as TaskKind
from labelwise.task import infer_task as infer_task

__all__ = ["Task", "TaskKind", "infer_task"]
