"""The Task: the one source of truth for what kind of classification the labels describe.

`infer_task` reads labels in any common spelling and returns a frozen `Task` that owns the class
vocabulary, the label encoding, the head type (`HeadType`, chosen once) and, through it, the target dtype, the
head width, the activation and the loss. Every other module asks the Task instead of re-deriving any of these,
so they cannot disagree (the seed articles' failures: a binary head trained with the wrong loss, Long targets fed
to BCE, softmax forced onto labels that can be empty).

The parts live in private modules: `TaskKind`, `HeadType` and which kind allows which head in
``labelwise._kinds``, what each head type does in ``labelwise._heads``, the `Task` in ``labelwise._task`` and the
inference in ``labelwise._infer``. Import them from here.

Example:
    >>> task = infer_task(["cat", "dog", "dog"], binary_head="two")
    >>> task.head, task.head_width, task.activation
    (<HeadType.TWO_LOGITS: 'two_logits'>, 2, 'softmax')
"""

from __future__ import annotations

from labelwise._infer import BinaryHead, infer_task
from labelwise._kinds import KIND_HEADS, HeadType, Label, TaskKind
from labelwise._task import Task, join_labels

__all__ = ["KIND_HEADS", "BinaryHead", "HeadType", "Label", "Task", "TaskKind", "infer_task", "join_labels"]
