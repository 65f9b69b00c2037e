"""The `Task` dataclass: the class vocabulary, the head type, and the label encoding; see `labelwise.task`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labelwise._decisions import as_decisions, bad_index_rows, bad_mask_rows, decode_indices, decode_sets
from labelwise._heads import HEADS, HeadBehaviour
from labelwise._kinds import HeadType, Label, TaskKind, check_head, choose_head
from labelwise._labels import (
    align_indicator,
    check_classes,
    check_known,
    check_label_sep,
    check_no_missing,
    check_one_per_item,
    indicator_to_indices,
    is_missing,
    parse,
)
from labelwise.errors import ConfigError, LabelError, check_fields, format_examples, format_rows

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported where a tensor is built (`encode`, `target_dtype`), not at the top: `labelwise inspect` and
# `predict --backend onnx` use a Task on numpy arrays and must not pay torch's import (a second and 600 MB).

__all__ = ["Task", "join_labels"]

# Task fields written before the head type existed; `from_dict` still reads them so saved runs load.
_LEGACY_HEAD_FIELDS = ("binary_head", "one_vs_rest")


@dataclass(frozen=True, init=False)
class Task:
    """What the labels say the problem is, and everything that follows from it.

    Args:
        kind: binary, multiclass or multilabel.
        classes: the class vocabulary in a stable order; for binary ``(negative, positive)``.
        reason: one short paragraph saying why this kind and head were chosen.
        label_sep: separator of multilabel label strings, used to read and to write them.
        head: the `HeadType`, one the kind allows (`labelwise.task.KIND_HEADS`); None (the default) picks the
            kind's default: ``one_logit`` for binary, ``softmax`` for multiclass, ``multilabel`` for multilabel.
            ``two_logits`` is the same binary model as one logit (see `probabilities`) with one more parameter;
            ``one_vs_rest`` gives each class its own sigmoid, so "no class above its threshold" can mean "none of
            these" (`--allow-none one_vs_rest`); ``ranked`` is set by `with_head` for huge label spaces.

    Example:
        >>> from labelwise.task import infer_task
        >>> task = infer_task(["cat", "dog", "dog", "cat"])
        >>> task.kind, task.head, task.classes, task.head_width
        (<TaskKind.BINARY: 'binary'>, <HeadType.ONE_LOGIT: 'one_logit'>, ('cat', 'dog'), 1)
        >>> task.encode(["dog", "cat"])
        tensor([1., 0.])
    """

    kind: TaskKind
    classes: tuple[Label, ...]
    reason: str
    label_sep: str
    head: HeadType
    _index: dict[Label, int] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        *,
        kind: TaskKind | str,
        classes: Iterable[Label],
        reason: str = "",
        label_sep: str = " ",
        head: HeadType | str | None = None,
    ) -> None:
        # Written out, not generated: the head's default depends on the kind, which a dataclass default cannot, and
        # the arguments take the spellings users pass (strings, any iterable) that the fields hold resolved.
        for name, value in (("kind", kind), ("classes", classes), ("reason", reason), ("label_sep", label_sep)):
            object.__setattr__(self, name, value)
        self._resolve(head)

    def _resolve(self, head: HeadType | str | None) -> None:
        try:
            object.__setattr__(self, "kind", TaskKind(self.kind))
        except ValueError:
            raise ConfigError(
                f"task kind {self.kind!r} is not one of binary, multiclass, multilabel; pass one of those or 'auto'."
            ) from None
        object.__setattr__(self, "head", check_head(self.kind, head))
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
        object.__setattr__(self, "_index", index)

    def with_head(self, head: HeadType | str) -> Task:
        """This Task with another head type; the reason's sentence about the head follows.

        The fit pipeline calls it with ``HeadType.RANKED`` once it has chosen a chunked loss for a huge label space.

        Raises:
            ConfigError: a head type this Task's kind does not allow.

        Example:
            >>> task = Task(kind="multiclass", classes=("a", "b", "c"), reason="multiclass: 3 classes.")
            >>> ranked = task.with_head("ranked")
            >>> import torch
            >>> ranked.head, ranked.probabilities(torch.zeros(1, 3)).tolist()
            (<HeadType.RANKED: 'ranked'>, [[0.3333333432674408, 0.3333333432674408, 0.3333333432674408]])
        """
        head = check_head(self.kind, head)
        old, new = head_sentence(self.head, self.num_classes), head_sentence(head, self.num_classes)
        reason = self.reason[: -len(old)] + new if self.reason.endswith(old) else self.reason
        return dataclasses.replace(self, head=head, reason=reason)

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
    def _head(self) -> HeadBehaviour:
        return HEADS[self.head]

    @property
    def head_width(self) -> int:
        """Number of logits the head must output."""
        return 1 if self._head.one_logit else self.num_classes

    @property
    def target_dtype(self) -> torch.dtype:
        """dtype of `encode`'s output: float 0/1 for ``one_logit`` and ``multilabel``, else long class indices.

        A ``one_vs_rest`` head keeps class indices (so splits, metrics and decisions treat it as the single-label
        task it is); its loss compares the logits with `bce_targets`.
        """
        import torch

        dtype: torch.dtype = getattr(torch, self._head.target_dtype)
        return dtype

    @property
    def activation(self) -> str:
        """``"sigmoid"`` or ``"softmax"``: what turns this Task's logits into probabilities."""
        return self._head.activation

    @property
    def loss_name(self) -> str:
        """The torch loss this Task trains with."""
        return self._head.loss_name

    def bce_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """Targets ``(N, head_width)`` float 0/1, as a sigmoid head's BCE compares them with the logits.

        Raises:
            ConfigError: this Task has a softmax head (its loss takes class indices).

        Example:
            >>> task = Task(kind="multiclass", classes=("a", "b", "c"), head="one_vs_rest")
            >>> task.bce_targets(task.encode(["c", "a"]))
            tensor([[0., 0., 1.],
                    [1., 0., 0.]])
        """
        if self._head.bce_targets is None:
            raise ConfigError(
                f"this {self.kind} Task has a softmax head trained with {self.loss_name} on class indices; "
                "there are no per-logit BCE targets. Use `task.encode(labels)` as the targets."
            )
        return self._head.bce_targets(targets, self.head_width)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Turn logits ``(N, head_width)`` into class probabilities ``(N, num_classes)`` in `classes` order.

        ``one_logit`` returns both columns ``[1 - sigmoid(z), sigmoid(z)]``; ``two_logits`` ``softmax(z)``, whose
        positive column equals ``sigmoid(z1 - z0)``: the same model. ``one_vs_rest`` returns its sigmoids
        normalised over the classes; ``torch.sigmoid(logits)`` keeps each class's own probability, which the
        "none of these" score reads.
        """
        self._check_logits(logits)
        return self._head.probabilities(logits)

    def loss(
        self,
        *,
        pos_weight: torch.Tensor | None = None,
        class_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> nn.Module:
        """The loss module for this Task; see `labelwise.losses.loss_for`."""
        from labelwise import losses

        return losses.loss_for(self, pos_weight=pos_weight, class_weight=class_weight, label_smoothing=label_smoothing)

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
        import torch

        return torch.from_numpy(self.encode_array(labels))

    def encode_array(self, labels: Any) -> np.ndarray:
        """`encode`'s targets as a numpy array of the same values, shape and dtype, built without torch.

        Example:
            >>> Task(kind="binary", classes=("no", "yes")).encode_array(["yes", "no"])
            array([1., 0.], dtype=float32)
        """
        if self.kind is TaskKind.MULTILABEL:
            return self._encode_multilabel(labels)
        return self._encode_single(labels).astype(self._head.target_dtype, copy=False)

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
            # Nonzero is not "decided": probabilities passed here would silently decode to every label.
            bad = bad_mask_rows(decisions)
            self._check_decisions(bad, expected="0/1 or bool per label; apply the thresholds first")
            return decode_sets(decisions, self.classes)
        if decisions.ndim != 1:
            raise ConfigError(f"{self.kind} decisions must be (N,) class indices, got {tuple(decisions.shape)}.")
        bad = bad_index_rows(decisions, self.num_classes)
        self._check_decisions(bad, expected=f"class indices 0..{self.num_classes - 1}, or -1 for abstained")
        return decode_indices(decisions, self.classes)

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
            "head": str(self.head),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        """Rebuild a Task written by `to_dict`, or by a labelwise that stored ``binary_head`` and ``one_vs_rest``
        instead of ``head``.

        Raises:
            ConfigError: unknown or missing fields, classes that are not a list, or a head the kind does not allow.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a Task is stored as a JSON object, got {type(data).__name__}.")
        legacy = () if "head" in data else _LEGACY_HEAD_FIELDS
        check_fields(data, [f.name for f in fields(cls) if f.init] + list(legacy), what="Task")
        missing = [key for key in ("kind", "classes") if key not in data]
        if missing or not isinstance(data["classes"], list):
            found = f"no {' or '.join(map(repr, missing))}" if missing else f"classes={data['classes']!r}"
            raise ConfigError(
                f"a stored Task needs 'kind' and a list of 'classes'; found {found}. "
                "The labelwise.json was edited or damaged: retrain the run or restore the file."
            )
        head = data.get("head")
        if legacy:
            head = choose_head(
                data["kind"],
                binary_head=data.get("binary_head", "one"),
                one_vs_rest=bool(data.get("one_vs_rest", False)),
            )
        return cls(
            kind=data["kind"],
            classes=tuple(data["classes"]),
            reason=data.get("reason", ""),
            label_sep=data.get("label_sep", " "),
            head=head,
        )


def head_sentence(head: HeadType, num_classes: int) -> str:
    """The sentence of a Task's reason that describes ``head`` for ``num_classes`` classes."""
    return HEADS[head].sentence.format(num_classes=num_classes)


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
