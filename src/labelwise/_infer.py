"""`infer_task`: the Task that labels in any common spelling describe, and why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from labelwise._kinds import KIND_HEADS, Label, TaskKind, choose_head
from labelwise._labels import (
    Parsed,
    check_no_missing,
    check_one_per_item,
    check_one_type,
    free_separator,
    indicator_to_indices,
    is_multilabel,
    parse,
)
from labelwise._task import Task, head_sentence
from labelwise.errors import ConfigError, LabelError, format_examples

__all__ = ["POSITIVE_NAMES", "BinaryHead", "infer_task", "is_positive_name"]

# `infer_task`'s (and `--binary-head`'s) spelling of the binary head types one_logit and two_logits.
BinaryHead = Literal["one", "two"]

# Text spellings (any case, surrounding blanks ignored) that mean "positive" whatever the class counts: a person who
# writes yes/no or 1/0 means yes and 1 even when they are the majority. Kept to generic affirmatives: a domain word
# ("spam", "fraud", "malignant") is the class of interest in one data set and not in the next, so it falls to the
# rarer-class rule, which the Task's reason names along with `positive=`.
POSITIVE_NAMES = frozenset({"1", "1.0", "+1", "y", "yes", "t", "true", "on", "pos", "positive"})


def infer_task(
    labels: Any,
    *,
    kind: TaskKind | str | None = None,
    label_sep: str | None = None,
    positive: Label | None = None,
    binary_head: BinaryHead = "one",
    one_vs_rest: bool = False,
) -> Task:
    """Infer the Task from labels.

    Args:
        labels: one of: a sequence/Series/array of str, int or bool labels; delimiter-separated label strings
            (``"cat dog"``, ``""`` = no label); a list/set/tuple of labels per item; a 0/1 indicator matrix
            (array or DataFrame whose columns name the classes).
        kind: ``None``/``"auto"`` to infer, or force ``binary``, ``multiclass``, ``multilabel`` (multilabel on
            single-label data is legal and lets the model answer "none of these").
        label_sep: separator of multilabel strings; by default ``;``, ``,`` or space, whichever alone occurs.
        positive: the positive class of a binary task. By default the class whose name means positive (``True``,
            ``1``, or text such as ``yes``, ``Y``, ``true``, ``pos``: `POSITIVE_NAMES`, any case) when exactly one
            class has such a name, else the rarer class.
        binary_head: binary tasks only: ``"one"`` logit (default, head type ``one_logit``) or ``"two"``
            (``two_logits``).
        one_vs_rest: single-label labels only: one sigmoid per class instead of a softmax (head type
            ``one_vs_rest``, see `Task`).

    Returns:
        a frozen `Task` whose ``reason`` says why this kind and head were chosen.

    Raises:
        LabelError: a single class, missing labels in single-label data, mixed label types, non-integer numbers.
        ConfigError: a forced kind the labels cannot have, an unknown ``positive``, or head options that conflict
            (``one_vs_rest`` on multilabel labels, or with ``binary_head="two"``).

    Example:
        >>> infer_task(["a b", "", "c", "a"]).kind
        <TaskKind.MULTILABEL: 'multilabel'>
        >>> infer_task([[1, 0, 1], [0, 0, 0]]).classes
        (0, 1, 2)
    """
    forced = None if kind in (None, "auto") else _coerce_kind(kind)
    parsed = parse(labels, label_sep=label_sep, split=forced in (None, TaskKind.MULTILABEL), whole_names=forced is None)
    if parsed.indicator is not None:
        task = _task_from_indicator(parsed, forced=forced, positive=positive)
    elif parsed.sets is not None and (forced is TaskKind.MULTILABEL or (forced is None and is_multilabel(parsed))):
        task = _task_from_sets(parsed, forced=forced)
    else:
        task = _task_from_singles(parsed, forced=forced, positive=positive)
        task = replace(task, reason=task.reason + parsed.note) if parsed.note else task
    if one_vs_rest and task.kind is TaskKind.MULTILABEL:
        raise ConfigError(
            "one-vs-rest (`--allow-none one_vs_rest`) trains single-label data with one sigmoid per class; these "
            "labels are multilabel, which already has one sigmoid per label and answers none when no label passes "
            "its threshold. Drop the option."
        )
    # The one place the user's head options become a head type; the Task above has its kind's default head.
    head = choose_head(task.kind, binary_head=binary_head, one_vs_rest=one_vs_rest)
    return task if head is None else task.with_head(head)


def _task(kind: TaskKind, classes: list[Any], *, why: str, label_sep: str = " ") -> Task:
    """A Task of ``kind``'s default head whose reason is ``why`` followed by the head's sentence."""
    reason = f"{why} {head_sentence(KIND_HEADS[kind][0], len(classes))}"
    return Task(kind=kind, classes=tuple(classes), reason=reason, label_sep=label_sep)


def _coerce_kind(kind: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(kind)
    except ValueError:
        raise ConfigError(f"task={kind!r} is not one of 'auto', 'binary', 'multiclass', 'multilabel'.") from None


def _task_from_indicator(parsed: Parsed, *, forced: TaskKind | None, positive: Any) -> Task:
    assert parsed.indicator is not None and parsed.indicator_names is not None  # noqa: S101 - internal invariant
    matrix, names = parsed.indicator, parsed.indicator_names
    if forced in (TaskKind.BINARY, TaskKind.MULTICLASS):
        indices = indicator_to_indices(matrix, names, None)
        singles = [names[i] for i in indices]
        return _task_from_singles(Parsed(form="indicator", singles=singles), forced=forced, positive=positive)
    per_row = matrix.sum(axis=1)
    why = (
        f"multilabel: the target is a 0/1 indicator matrix of {len(names)} labels "
        f"({int((per_row != 1).sum())} of {len(per_row)} rows hold 0 or 2+ labels)."
    )
    _check_each_label_varies(matrix, names)
    return _task(TaskKind.MULTILABEL, names, why=why)


def _check_each_label_varies(matrix: np.ndarray, names: list[Any]) -> None:
    if not matrix.any():
        raise LabelError(
            f"no item has any label (all {matrix.shape[0]} rows are empty); a classifier needs positive examples. "
            "Check the target column(s)."
        )


def _task_from_sets(parsed: Parsed, *, forced: TaskKind | None) -> Task:
    assert parsed.sets is not None  # noqa: S101 - internal invariant
    sets = parsed.sets
    classes = sorted_classes({label for row in sets for label in row})
    if not classes:
        raise LabelError(f"no item has any label (all {len(sets)} rows are empty); a classifier needs labels.")
    check_one_type([label for row in sets for label in row], rows=[i for i, row in enumerate(sets) for _ in row])
    multi = sum(len(row) > 1 for row in sets)
    empty = sum(len(row) == 0 for row in sets)
    how = {
        "delimited": f"label strings split on {parsed.sep!r}" if parsed.sep else "label strings holding no separator",
        "lists": "one collection of labels per item",
    }
    if forced is TaskKind.MULTILABEL and not parsed.has_multi_or_empty:
        why = (
            "multilabel because task='multilabel' was asked for "
            "(every item holds one label, so an item may now get none)"
        )
    else:
        why = f"multilabel: {multi} of {len(sets)} items hold 2+ labels and {empty} hold none"
    if len(classes) == 1:
        # A lone label still needs two "classes" for the Task; the set form is the natural one here.
        raise LabelError(
            f"the labels hold a single class {classes[0]!r} (present in some items, absent in others). "
            "Expected at least two labels. For a present/absent problem use a binary target (e.g. True/False)."
        )
    # Written predictions join labels with label_sep; a class holding it would read back as two labels.
    label_sep = parsed.sep or free_separator(classes)
    return _task(TaskKind.MULTILABEL, classes, why=f"{why} ({how.get(parsed.form, parsed.form)}).", label_sep=label_sep)


def _task_from_singles(parsed: Parsed, *, forced: TaskKind | None, positive: Any) -> Task:
    check_one_per_item(parsed, str(forced) if forced else "single-label")
    values = check_no_missing(parsed.singles, None)
    check_one_type(values)
    counts = pd.Series(values, dtype=object).value_counts(sort=False)
    classes = sorted_classes(counts.index.tolist())
    if len(classes) == 1:
        raise LabelError(
            f"the target holds one class ({classes[0]!r}) in all {len(values)} rows; a classifier needs at least two. "
            "Check the target column, or add rows of the other class."
        )
    if forced is TaskKind.MULTILABEL:
        sets = [(v,) for v in values]
        return _task_from_sets(Parsed(form=parsed.form, sets=sets), forced=forced)
    kind = forced or (TaskKind.BINARY if len(classes) == 2 else TaskKind.MULTICLASS)
    if kind is TaskKind.BINARY and len(classes) != 2:
        raise ConfigError(
            f"task='binary' needs exactly 2 classes, the labels hold {len(classes)}: {format_examples(classes)}. "
            "Use task='multiclass' (or 'auto')."
        )
    if kind is TaskKind.BINARY:
        return _binary_task(classes, counts, positive=positive)
    if positive is not None:
        raise ConfigError(f"positive={positive!r} only applies to binary tasks; this one is {kind}.")
    why = "multiclass because task='multiclass' was asked for" if forced else "multiclass"
    return _task(TaskKind.MULTICLASS, classes, why=f"{why}: {len(classes)} classes, exactly one per item.{parsed.note}")


def _binary_task(classes: list[Any], counts: pd.Series, *, positive: Any) -> Task:
    if positive is not None and positive not in classes:
        # The CLI hands over text; a class read from a CSV may be an int or a bool of the same spelling.
        positive = next((c for c in classes if str(c) == str(positive)), positive)
    if positive is None:
        positive, why_positive = _default_positive(classes, counts)
    elif positive not in classes:
        raise ConfigError(
            f"positive={positive!r} is not one of the classes {classes!r}; pass one of them, spelled as in the "
            "data (CLI: --positive)."
        )
    else:
        why_positive = "as given (--positive)"
    negative = next(c for c in classes if c != positive)
    why = (
        f"binary: 2 classes ({negative!r}, {positive!r}), one per item; positive class {positive!r} "
        f"({why_positive}; {int(counts[positive])} of {int(counts.sum())} items)."
    )
    return _task(TaskKind.BINARY, [negative, positive], why=why)


def is_positive_name(label: Any) -> bool:
    """Whether ``label`` is a conventional spelling of "positive": True, 1, or one of `POSITIVE_NAMES` as text.

    Example:
        >>> [is_positive_name(v) for v in (True, 1, " Yes", "Y", "0", "spam", 2)]
        [True, True, True, True, False, False, False]
    """
    if isinstance(label, bool):
        return label
    if isinstance(label, int):
        return label == 1
    return isinstance(label, str) and label.strip().lower() in POSITIVE_NAMES


def _default_positive(classes: list[Any], counts: pd.Series) -> tuple[Any, str]:
    named = [c for c in classes if is_positive_name(c)]
    if len(named) == 1:
        return named[0], f"{named[0]!r} reads as the positive name; pass --positive (positive=) to choose the other"
    rarer = min(classes, key=lambda c: (counts[c], classes.index(c) == 0))
    if named:  # e.g. "1" and "yes": the names say nothing, the counts still do
        return rarer, "the rarer class, as both classes read as positive names; pass --positive (positive=) to choose"
    return rarer, "the rarer class, as neither class reads as a positive name; pass --positive (positive=) to choose"


def sorted_classes(classes: Iterable[Any]) -> list[Any]:
    """Classes in order; text that all reads as numbers (classes ``"1.0"``, ``"2.0"``, ``"10.0"`` kept as written)
    in numeric order, so that ``"10.0"`` follows ``"9.0"`` in the ``p:<class>`` columns and reports.

    Example:
        >>> sorted_classes(["10.0", "9.0", "1.0"]), sorted_classes(["b", "a"]), sorted_classes(["010", "9"])
        (['1.0', '9.0', '10.0'], ['a', 'b'], ['9', '010'])
    """
    items = list(classes)
    if items and all(type(c) is str for c in items):
        numbers = [_as_number(c) for c in items]
        if all(n is not None for n in numbers):
            return [c for _, c in sorted(zip(numbers, items, strict=True))]
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda c: (type(c).__name__, str(c)))


def _as_number(text: str) -> float | None:
    """``text`` as a finite number written in ASCII, else None (``float`` also reads "nan" and other scripts' digits,
    which no one sorts as numbers)."""
    if not text.isascii():
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if np.isfinite(number) else None
