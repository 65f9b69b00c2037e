"""The Task: the one source of truth for what kind of classification the labels describe.

`infer_task` reads labels in any common spelling and returns a frozen `Task` that owns the class
vocabulary, the label encoding, the target dtype, the head width, the activation and the loss.
Every other module asks the Task instead of re-deriving any of these, so they cannot disagree
(the seed articles' failures: a binary head trained with the wrong loss, Long targets fed to BCE,
softmax forced onto labels that can be empty).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from labelwise._labels import (
    Parsed,
    align_indicator,
    as_decisions,
    check_classes,
    check_known,
    check_label_sep,
    check_no_missing,
    check_one_per_item,
    check_one_type,
    free_separator,
    indicator_to_indices,
    is_missing,
    is_multilabel,
    parse,
    sorted_classes,
)
from labelwise.errors import ConfigError, LabelError, check_fields, format_examples, format_rows

if TYPE_CHECKING:
    from torch import nn

__all__ = ["BinaryHead", "Label", "Task", "TaskKind", "infer_task", "join_labels"]

Label = str | int | bool
BinaryHead = Literal["one", "two"]


class TaskKind(enum.StrEnum):
    """The three kinds of classification."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"


@dataclass(frozen=True, kw_only=True)
class Task:
    """What the labels say the problem is, and everything that follows from it.

    Args:
        kind: binary, multiclass or multilabel.
        classes: the class vocabulary in a stable order; for binary ``(negative, positive)``.
        reason: one short paragraph saying why this kind was chosen.
        label_sep: separator of multilabel label strings, used to read and to write them.
        binary_head: ``"one"`` logit with sigmoid and BCE (default), or ``"two"`` logits with softmax and
            cross-entropy; the same model either way (see `probabilities`), one logit has fewer parameters.
        one_vs_rest: single-label tasks only: one logit per class, each with its own sigmoid, trained with BCE on
            one-hot targets (the seed's "one-vs-all"). Unlike a softmax, the classes need not share the
            probability mass, so "no class above its threshold" can mean "none of these" (`--allow-none one_vs_rest`).

    Example:
        >>> task = infer_task(["cat", "dog", "dog", "cat"])
        >>> task.kind, task.classes, task.head_width
        (<TaskKind.BINARY: 'binary'>, ('cat', 'dog'), 1)
        >>> task.encode(["dog", "cat"])
        tensor([1., 0.])
    """

    kind: TaskKind
    classes: tuple[Label, ...]
    reason: str = ""
    label_sep: str = " "
    binary_head: BinaryHead = "one"
    one_vs_rest: bool = False
    _index: dict[Label, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", TaskKind(self.kind))
        except ValueError:
            raise ConfigError(
                f"task kind {self.kind!r} is not one of binary, multiclass, multilabel; pass one of those or 'auto'."
            ) from None
        object.__setattr__(self, "classes", check_classes(self.classes))
        check_label_sep(self.label_sep)
        if len(self.classes) < 2:
            raise LabelError(f"a {self.kind} Task needs at least two classes, got {list(self.classes)!r}.")
        index = dict(zip(self.classes, range(len(self.classes)), strict=True))
        if len(index) != len(self.classes):
            raise LabelError(f"classes must be distinct, got {list(self.classes)!r}.")
        if self.kind is TaskKind.BINARY and len(self.classes) != 2:
            raise ConfigError(
                f"task='binary' needs exactly 2 classes, the labels hold {len(self.classes)}: "
                f"{format_examples(self.classes)}. Use task='multiclass' (or 'auto')."
            )
        if self.binary_head not in ("one", "two"):
            raise ConfigError(f"binary_head={self.binary_head!r}; expected 'one' or 'two'.")
        if self.one_vs_rest and self.kind is TaskKind.MULTILABEL:
            raise ConfigError(
                "one_vs_rest=True is for single-label tasks; a multilabel Task already has one sigmoid per label. "
                "Drop one_vs_rest."
            )
        if self.one_vs_rest and self.binary_head != "one":
            raise ConfigError(
                "one_vs_rest=True gives a binary Task one sigmoid logit per class; binary_head='two' asks for a "
                "softmax over two logits instead. Pass one of them."
            )
        object.__setattr__(self, "_index", index)

    # -- what the network and the loss look like -------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes (2 for binary, also with a one-logit head)."""
        return len(self.classes)

    @property
    def positive(self) -> Label | None:
        """The positive class of a binary task (``classes[1]``), else None."""
        return self.classes[1] if self.kind is TaskKind.BINARY else None

    @property
    def head_width(self) -> int:
        """Number of logits the head must output."""
        return 1 if self._one_logit else self.num_classes

    @property
    def target_dtype(self) -> torch.dtype:
        """dtype of `encode`'s output: float 0/1 for one-logit binary and multilabel, else long class indices.

        A `one_vs_rest` head keeps class indices (so splits, metrics and decisions treat it as the single-label
        task it is); its loss compares the logits with `bce_targets`.
        """
        return torch.float32 if self._one_logit or self.kind is TaskKind.MULTILABEL else torch.long

    @property
    def activation(self) -> str:
        """``"sigmoid"`` or ``"softmax"``: what turns this Task's logits into probabilities."""
        return "sigmoid" if self._sigmoid else "softmax"

    @property
    def loss_name(self) -> str:
        """The torch loss this Task trains with."""
        return "BCEWithLogitsLoss" if self._sigmoid else "CrossEntropyLoss"

    @property
    def _one_logit(self) -> bool:
        return self.kind is TaskKind.BINARY and self.binary_head == "one" and not self.one_vs_rest

    @property
    def _sigmoid(self) -> bool:
        return self._one_logit or self.one_vs_rest or self.kind is TaskKind.MULTILABEL

    def bce_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """Targets ``(N, head_width)`` float 0/1, as a sigmoid head's BCE compares them with the logits.

        Raises:
            ConfigError: this Task has a softmax head (its loss takes class indices).

        Example:
            >>> task = Task(kind="multiclass", classes=("a", "b", "c"), one_vs_rest=True)
            >>> task.bce_targets(task.encode(["c", "a"]))
            tensor([[0., 0., 1.],
                    [1., 0., 0.]])
        """
        if not self._sigmoid:
            raise ConfigError(
                f"this {self.kind} Task has a softmax head trained with {self.loss_name} on class indices; "
                "there are no per-logit BCE targets. Use `task.encode(labels)` as the targets."
            )
        if self.one_vs_rest:
            return torch.nn.functional.one_hot(targets.long(), self.num_classes).to(torch.float32)
        return targets.to(torch.float32).reshape(len(targets), self.head_width)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Turn logits ``(N, head_width)`` into class probabilities ``(N, num_classes)`` in `classes` order.

        Binary with one logit returns both columns ``[1 - sigmoid(z), sigmoid(z)]``; with two logits
        ``softmax(z)``, whose positive column equals ``sigmoid(z1 - z0)``: the same model. A `one_vs_rest`
        head returns its sigmoids normalised over the classes; ``torch.sigmoid(logits)`` keeps each class's own
        probability, which the "none of these" score reads.
        """
        self._check_logits(logits)
        if self._one_logit:
            positive = torch.sigmoid(logits[:, 0])
            return torch.stack([1.0 - positive, positive], dim=1)
        if self.kind is TaskKind.MULTILABEL:
            return torch.sigmoid(logits)
        if self.one_vs_rest:
            # The sigmoids normalised to sum to 1: P(class | one of the known classes). softmax(logsigmoid) is
            # that ratio without the 0/0 of sigmoids that all underflow.
            return torch.softmax(torch.nn.functional.logsigmoid(logits), dim=1)
        return torch.softmax(logits, dim=1)

    def loss(
        self,
        *,
        pos_weight: torch.Tensor | None = None,
        class_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> nn.Module:
        """The loss module for this Task; see `labelwise.losses.loss_for`."""
        from labelwise.losses import loss_for

        return loss_for(self, pos_weight=pos_weight, class_weight=class_weight, label_smoothing=label_smoothing)

    def _check_logits(self, logits: torch.Tensor) -> None:
        if logits.ndim != 2 or logits.shape[1] != self.head_width:
            raise ConfigError(
                f"logits of shape {tuple(logits.shape)} do not fit this {self.kind} Task: expected "
                f"(N, {self.head_width}). Size the model's head with `task.head_width`."
            )

    # -- labels <-> tensors ----------------------------------------------------------------------
    def encode(self, labels: Any) -> torch.Tensor:
        """Encode labels, in any spelling `infer_task` accepts, into training targets.

        Returns:
            binary (one logit): ``(N,)`` float 0/1; binary (two logits) and multiclass: ``(N,)`` long class
            indices; multilabel: ``(N, num_classes)`` float 0/1.

        Raises:
            LabelError: labels this Task has never seen, missing labels, or several labels on a single-label task.
        """
        if self.kind is TaskKind.MULTILABEL:
            return torch.from_numpy(self._encode_multilabel(labels)).to(torch.float32)
        indices = self._encode_single(labels)
        return torch.from_numpy(indices).to(self.target_dtype)

    def is_known(self, labels: Any) -> np.ndarray:
        """``(N,)`` bool: which single labels are among this Task's classes (the rest are unknown classes).

        Raises:
            ConfigError: a multilabel Task (its items hold sets, and an empty set already means none).
            LabelError: missing labels.

        Example:
            >>> Task(kind="multiclass", classes=(0, 1, 2)).is_known([2, 7, 0]).tolist()
            [True, False, True]
        """
        if self.kind is TaskKind.MULTILABEL:
            raise ConfigError("is_known takes single labels; a multilabel Task's items hold sets of labels.")
        values = check_no_missing(parse(labels, label_sep=None, split=False).singles, self)
        return self._indices(values) >= 0

    def _encode_single(self, labels: Any) -> np.ndarray:
        parsed = parse(labels, label_sep=None, split=False)
        if parsed.indicator is not None:
            return indicator_to_indices(parsed.indicator, parsed.indicator_names, self)
        check_one_per_item(parsed, self.kind)
        values = check_no_missing(parsed.singles, self)
        indices = self._indices(values)
        check_known(values, indices, self)
        return indices

    def _indices(self, values: list[Any]) -> np.ndarray:
        """Class index of each parsed single label, -1 for a label that is not a class."""
        return np.asarray(
            pd.Index(pd.Series(self.classes, dtype=object)).get_indexer(pd.Series(values, dtype=object)),
            dtype=np.int64,
        )

    def _encode_multilabel(self, labels: Any) -> np.ndarray:
        parsed = parse(labels, label_sep=self.label_sep, split=True)
        if parsed.indicator is not None:
            return align_indicator(parsed.indicator, parsed.indicator_names, self)
        sets = parsed.sets if parsed.sets is not None else [() if is_missing(v) else (v,) for v in parsed.singles]
        flat = [label for row in sets for label in row]
        rows = np.repeat(np.arange(len(sets)), [len(row) for row in sets])
        cols = pd.Index(pd.Series(self.classes, dtype=object)).get_indexer(pd.Series(flat, dtype=object))
        check_known(flat, cols, self, rows=rows)
        out = np.zeros((len(sets), self.num_classes), dtype=np.float32)
        out[rows, cols] = 1.0
        return out

    def decode(self, decisions: torch.Tensor | np.ndarray) -> list[Any]:
        """Turn decisions back into labels as the user wrote them.

        Args:
            decisions: ``(N,)`` class indices for binary and multiclass (``-1`` = abstained, decoded as None;
                integral floats such as a one-logit binary Task's targets count as indices), or ``(N, num_classes)``
                0/1 or bool for multilabel. `encode`'s output decodes back to the labels.

        Returns:
            one label per row; for multilabel a tuple of labels in `classes` order (empty tuple = none).

        Raises:
            ConfigError: a shape, or values (out-of-range indices, probabilities), that are not this Task's decisions.
        """
        decisions = as_decisions(decisions)
        if self.kind is TaskKind.MULTILABEL:
            if decisions.ndim != 2 or decisions.shape[1] != self.num_classes:
                raise ConfigError(
                    f"multilabel decisions must be (N, {self.num_classes}), got {tuple(decisions.shape)}."
                )
            if decisions.dtype is not torch.bool:
                # Nonzero is not "decided": probabilities passed here would silently decode to every label.
                bad = (~((decisions == 0) | (decisions == 1))).any(dim=1).nonzero().flatten().tolist()
                self._check_decisions(bad, expected="0/1 or bool per label; apply the thresholds first")
            return self._decode_sets(decisions.bool().cpu().numpy())
        if decisions.ndim != 1:
            raise ConfigError(f"{self.kind} decisions must be (N,) class indices, got {tuple(decisions.shape)}.")
        return self._decode_single(decisions)

    def _decode_sets(self, mask: np.ndarray) -> list[Any]:
        # One nonzero over the (N, C) mask, not one per row: at 10^5 labels the per-row scans dominate.
        rows, cols = np.nonzero(mask)
        names = np.empty(self.num_classes, dtype=object)
        names[:] = list(self.classes)
        per_row = np.split(names[cols], np.searchsorted(rows, np.arange(1, len(mask))))
        return [tuple(labels.tolist()) for labels in per_row] if len(mask) else []

    def _decode_single(self, decisions: torch.Tensor) -> list[Any]:
        values = decisions.long() if decisions.dtype is torch.bool else decisions
        ok = (values >= -1) & (values < self.num_classes)
        if values.is_floating_point():
            ok &= values == values.round()  # integral floats count as indices; NaN and 0.5 do not
        bad = (~ok).nonzero().flatten().tolist()
        self._check_decisions(bad, expected=f"class indices 0..{self.num_classes - 1}, or -1 for abstained")
        # One object array lookup instead of a Python loop; -1 (abstained) picks the trailing None.
        names = np.empty(self.num_classes + 1, dtype=object)
        names[: self.num_classes] = list(self.classes)
        indices = values.long().cpu().numpy()
        decoded: list[Any] = names[np.where(indices < 0, self.num_classes, indices)].tolist()
        return decoded

    def _check_decisions(self, bad: list[int], *, expected: str) -> None:
        if bad:
            raise ConfigError(
                f"decisions in {format_rows(bad)} are not decisions of this {self.kind} Task; expected {expected}. "
                "Decide with the run's policy (or `probs.argmax(1)`) before decoding."
            )

    # -- storage ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {
            "kind": str(self.kind),
            "classes": list(self.classes),
            "reason": self.reason,
            "label_sep": self.label_sep,
            "binary_head": self.binary_head,
            "one_vs_rest": self.one_vs_rest,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        """Rebuild a Task written by `to_dict`.

        Raises:
            ConfigError: unknown or missing fields, or classes that are not a list.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a Task is stored as a JSON object, got {type(data).__name__}.")
        check_fields(data, [f.name for f in fields(cls) if f.init], what="Task")
        missing = [key for key in ("kind", "classes") if key not in data]
        if missing or not isinstance(data["classes"], list):
            found = f"no {' or '.join(map(repr, missing))}" if missing else f"classes={data['classes']!r}"
            raise ConfigError(
                f"a stored Task needs 'kind' and a list of 'classes'; found {found}. "
                "The labelwise.json was edited or damaged: retrain the run or restore the file."
            )
        return cls(
            kind=data["kind"],
            classes=tuple(data["classes"]),
            reason=data.get("reason", ""),
            label_sep=data.get("label_sep", " "),
            binary_head=data.get("binary_head", "one"),
            one_vs_rest=bool(data.get("one_vs_rest", False)),
        )


def join_labels(labels: Iterable[Any], *, sep: str) -> list[str]:
    """Write decoded labels as strings: multilabel tuples joined by ``sep``, None (abstained/none) as ``""``."""
    out = []
    for label in labels:
        if label is None:
            out.append("")
        elif isinstance(label, tuple):
            out.append(sep.join(str(x) for x in label))
        else:
            out.append(str(label))
    return out


# ---------------------------------------------------------------------------------------------
# infer_task
# ---------------------------------------------------------------------------------------------
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
        positive: the positive class of a binary task; by default ``True``/``1`` when present, else the rarer class.
        binary_head: ``"one"`` logit (default) or ``"two"``.
        one_vs_rest: single-label labels only: one sigmoid per class instead of a softmax (see `Task`).

    Returns:
        a frozen `Task` whose ``reason`` says why this kind was chosen.

    Raises:
        LabelError: a single class, missing labels in single-label data, mixed label types, non-integer numbers.
        ConfigError: a forced kind the labels cannot have, or an unknown ``positive``.

    Example:
        >>> infer_task(["a b", "", "c", "a"]).kind
        <TaskKind.MULTILABEL: 'multilabel'>
        >>> infer_task([[1, 0, 1], [0, 0, 0]]).classes
        (0, 1, 2)
    """
    forced = None if kind in (None, "auto") else _coerce_kind(kind)
    parsed = parse(labels, label_sep=label_sep, split=forced in (None, TaskKind.MULTILABEL))
    if parsed.indicator is not None:
        task = _task_from_indicator(parsed, forced=forced, binary_head=binary_head, positive=positive)
    elif parsed.sets is not None and (forced is TaskKind.MULTILABEL or (forced is None and is_multilabel(parsed))):
        task = _task_from_sets(parsed, forced=forced)
    else:
        task = _task_from_singles(parsed, forced=forced, positive=positive, binary_head=binary_head)
    return _as_one_vs_rest(task) if one_vs_rest else task


def _as_one_vs_rest(task: Task) -> Task:
    if task.kind is TaskKind.MULTILABEL:
        raise ConfigError(
            "one-vs-rest (`--allow-none one_vs_rest`) trains single-label data with one sigmoid per class; these "
            "labels are multilabel, which already has one sigmoid per label and answers none when no label passes "
            "its threshold. Drop the option."
        )
    head = (
        f"{task.num_classes} logits, a sigmoid each, BCEWithLogitsLoss on one-hot targets (one-vs-rest, asked for "
        "so that no class above its threshold can mean none of these)."
    )
    # The kind sentence ends where the head sentence the inference wrote begins.
    kind_sentence = task.reason[: task.reason.rfind(". ", 0, task.reason.find(" logit")) + 2]
    return Task(
        kind=task.kind,
        classes=task.classes,
        reason=kind_sentence + head,
        label_sep=task.label_sep,
        binary_head=task.binary_head,  # 'two' conflicts with one sigmoid per class: the Task says so
        one_vs_rest=True,
    )


def _coerce_kind(kind: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(kind)
    except ValueError:
        raise ConfigError(f"task={kind!r} is not one of 'auto', 'binary', 'multiclass', 'multilabel'.") from None


def _task_from_indicator(parsed: Parsed, *, forced: TaskKind | None, binary_head: BinaryHead, positive: Any) -> Task:
    assert parsed.indicator is not None and parsed.indicator_names is not None  # noqa: S101 - internal invariant
    matrix, names = parsed.indicator, parsed.indicator_names
    if forced in (TaskKind.BINARY, TaskKind.MULTICLASS):
        indices = indicator_to_indices(matrix, names, None)
        singles = [names[i] for i in indices]
        return _task_from_singles(
            Parsed(form="indicator", singles=singles), forced=forced, positive=positive, binary_head=binary_head
        )
    per_row = matrix.sum(axis=1)
    reason = (
        f"multilabel: the target is a 0/1 indicator matrix of {len(names)} labels "
        f"({int((per_row != 1).sum())} of {len(per_row)} rows hold 0 or 2+ labels). "
        "One logit per label, a sigmoid each, BCEWithLogitsLoss with float targets; an item may get no label."
    )
    _check_each_label_varies(matrix, names)
    return Task(kind=TaskKind.MULTILABEL, classes=tuple(names), reason=reason)


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
        why += f"; the one label {classes[0]!r} is learned as present/absent"
    reason = (
        f"{why} ({how.get(parsed.form, parsed.form)}). One logit per label, a sigmoid each, "
        "BCEWithLogitsLoss with float targets; an item may get no label."
    )
    if len(classes) == 1:
        # A lone label still needs two "classes" for the Task; the set form is the natural one here.
        raise LabelError(
            f"the labels hold a single class {classes[0]!r} (present in some items, absent in others). "
            "Expected at least two labels. For a present/absent problem use a binary target (e.g. True/False)."
        )
    # Written predictions join labels with label_sep; a class holding it would read back as two labels.
    label_sep = parsed.sep or free_separator(classes)
    return Task(kind=TaskKind.MULTILABEL, classes=tuple(classes), reason=reason, label_sep=label_sep)


def _task_from_singles(parsed: Parsed, *, forced: TaskKind | None, positive: Any, binary_head: BinaryHead) -> Task:
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
        return _binary_task(classes, counts, positive=positive, binary_head=binary_head, forced=forced is not None)
    if positive is not None:
        raise ConfigError(f"positive={positive!r} only applies to binary tasks; this one is {kind}.")
    why = "multiclass because task='multiclass' was asked for" if forced else "multiclass"
    reason = (
        f"{why}: {len(classes)} classes, exactly one per item. {len(classes)} logits, softmax, "
        "CrossEntropyLoss with long class-index targets."
    )
    return Task(kind=TaskKind.MULTICLASS, classes=tuple(classes), reason=reason)


def _binary_task(
    classes: list[Any], counts: pd.Series, *, positive: Any, binary_head: BinaryHead, forced: bool
) -> Task:
    if positive is not None and positive not in classes:
        # The CLI hands over text; a class read from a CSV may be an int or a bool of the same spelling.
        positive = next((c for c in classes if str(c) == str(positive)), positive)
    if positive is None:
        positive, why_positive = _default_positive(classes, counts)
    elif positive not in classes:
        raise ConfigError(f"positive={positive!r} is not one of the classes {classes!r}; pass one of them.")
    else:
        why_positive = "as asked"
    negative = next(c for c in classes if c != positive)
    head = (
        "one logit, sigmoid, BCEWithLogitsLoss with float targets"
        if binary_head == "one"
        else "two logits, softmax, CrossEntropyLoss with long targets (binary_head='two'; the same model as one logit)"
    )
    reason = (
        f"binary: 2 classes ({negative!r}, {positive!r}), one per item; positive class {positive!r} "
        f"({why_positive}; {int(counts[positive])} of {int(counts.sum())} items). {head[0].upper()}{head[1:]}."
    )
    return Task(kind=TaskKind.BINARY, classes=(negative, positive), reason=reason, binary_head=binary_head)


def _default_positive(classes: list[Any], counts: pd.Series) -> tuple[Any, str]:
    for conventional in (True, 1):
        if any(c is conventional or (type(c) is type(conventional) and c == conventional) for c in classes):
            return conventional, f"{conventional!r} is the conventional positive"
    rarer = min(classes, key=lambda c: (counts[c], classes.index(c) == 0))
    return rarer, "the rarer class; pass positive= to choose"
