"""The kinds of classification and the head types that can serve each: the leaf both `labelwise.task` and
`labelwise.losses` import, so neither needs the other at import time.

A Task's kind says what the labels are (one of two classes, one of many, a set of labels); its head type says
what the network outputs and how those logits become probabilities and a loss. The kind allows a few head
types (`KIND_HEADS`), and the head type is chosen once, when the Task is made: every module reads
``task.head`` instead of re-deriving it from the head width or from options.
"""

from __future__ import annotations

import difflib
import enum

from labelwise.errors import ConfigError

__all__ = ["KIND_HEADS", "HeadType", "Label", "TaskKind", "check_head", "choose_head"]

Label = str | int | bool


class TaskKind(enum.StrEnum):
    """The three kinds of classification."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"


class HeadType(enum.StrEnum):
    """What the head outputs and how its logits become probabilities (see `labelwise.task.Task`).

    - ``one_logit``: binary, one logit, sigmoid, BCE on float 0/1 targets.
    - ``two_logits``: binary, two logits, softmax, cross-entropy on class indices (the same model as one logit).
    - ``softmax``: multiclass, one logit per class, softmax, cross-entropy on class indices.
    - ``one_vs_rest``: single-label, one logit per class with its own sigmoid, BCE on one-hot targets, so that no
      class above its threshold can mean "none of these".
    - ``multilabel``: one logit per label with its own sigmoid, BCE on float 0/1 targets.
    - ``ranked``: multiclass softmax whose logits are only ever computed in class chunks (huge label spaces); the
      same probabilities, loss and targets as ``softmax``.
    """

    ONE_LOGIT = "one_logit"
    TWO_LOGITS = "two_logits"
    SOFTMAX = "softmax"
    ONE_VS_REST = "one_vs_rest"
    MULTILABEL = "multilabel"
    RANKED = "ranked"


# The head types each kind allows; the first is the kind's default.
KIND_HEADS: dict[TaskKind, tuple[HeadType, ...]] = {
    TaskKind.BINARY: (HeadType.ONE_LOGIT, HeadType.TWO_LOGITS, HeadType.ONE_VS_REST),
    TaskKind.MULTICLASS: (HeadType.SOFTMAX, HeadType.ONE_VS_REST, HeadType.RANKED),
    TaskKind.MULTILABEL: (HeadType.MULTILABEL,),
}


def check_head(kind: TaskKind, head: HeadType | str | None) -> HeadType:
    """The head type ``head`` names, or ``kind``'s default for None.

    Raises:
        ConfigError: a name that is no head type (with the closest one), or a head type ``kind`` does not allow.

    Example:
        >>> check_head(TaskKind.MULTICLASS, None), check_head(TaskKind.BINARY, "two_logits")
        (<HeadType.SOFTMAX: 'softmax'>, <HeadType.TWO_LOGITS: 'two_logits'>)
    """
    allowed = KIND_HEADS[kind]
    if head is None:
        return allowed[0]
    try:
        head = HeadType(head)
    except ValueError:
        close = difflib.get_close_matches(str(head), [str(h) for h in HeadType], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"head={head!r} is not a head type; expected one of {', '.join(HeadType)}.{hint} "
            "Leave head out for the kind's default."
        ) from None
    if head not in allowed:
        raise ConfigError(
            f"head={str(head)!r} does not fit a {kind} Task; a {kind} Task takes head "
            f"{' or '.join(map(repr, map(str, allowed)))}. Pass one of those, or leave head out for "
            f"{str(allowed[0])!r}."
        )
    return head


def choose_head(kind: TaskKind | str, *, binary_head: str = "one", one_vs_rest: bool = False) -> HeadType | None:
    """The head type the user options ``binary_head`` and ``one_vs_rest`` ask for (`infer_task`'s keywords, and
    the fields a Task was stored with before it had a head type); None for the kind's default.

    ``binary_head`` only matters for binary tasks, where ``"two"`` asks for a softmax over two logits.

    Raises:
        ConfigError: ``binary_head`` is not ``"one"`` or ``"two"``, or a binary task asks for both two logits and
            one-vs-rest.

    Example:
        >>> choose_head(TaskKind.BINARY, binary_head="two"), choose_head(TaskKind.MULTICLASS, one_vs_rest=True)
        (<HeadType.TWO_LOGITS: 'two_logits'>, <HeadType.ONE_VS_REST: 'one_vs_rest'>)
    """
    if binary_head not in ("one", "two"):
        raise ConfigError(f"binary_head={binary_head!r}; expected 'one' or 'two' (`--binary-head one|two`).")
    # == not `is`: a stored Task's kind is still the string it was written as.
    two = kind == TaskKind.BINARY and binary_head == "two"
    if one_vs_rest and two:
        raise ConfigError(
            "one_vs_rest=True gives a binary Task one sigmoid logit per class; binary_head='two' asks for a "
            "softmax over two logits instead. Pass one of them."
        )
    if one_vs_rest:
        return HeadType.ONE_VS_REST
    return HeadType.TWO_LOGITS if two else None
