"""Reading labels in every spelling people use: single labels, delimited strings, collections, indicators.

`labelwise.task` turns what this module reads into a `Task`; the Task's ``encode`` uses the same readers, so
labels at predict time are read exactly as at training time.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labelwise._arrays import as_numpy, is_tensor
from labelwise.errors import ConfigError, LabelError, format_examples, format_rows

if TYPE_CHECKING:
    from labelwise.task import Task

# Tried in this order when `label_sep` is not given; one of them must be the only one present. "|" as in
# MovieLens genres ("Action|Comedy"); a label holding one of these needs an explicit label_sep.
_AUTO_SEPARATORS = ("|", ";", ",", " ")


@dataclass
class Parsed:
    """Labels read into one of three shapes: single labels, label sets, or an indicator matrix."""

    form: str  # strings | ints | bools | delimited | lists | indicator: how the user wrote them
    singles: list[Any] = field(default_factory=list)
    sets: list[tuple[Any, ...]] | None = None
    indicator: np.ndarray | None = None
    indicator_names: list[Any] | None = None
    sep: str | None = None
    note: str = ""  # how the strings were read, when it is not the obvious way

    @property
    def has_multi_or_empty(self) -> bool:
        return self.sets is not None and any(len(row) != 1 for row in self.sets)


def is_multilabel(parsed: Parsed) -> bool:
    """Collections with 0 or 2+ labels are multilabel; strings only when some row holds 2+ labels.

    An empty string in a column of single labels is more often a missing label than "none", so that case
    goes to the single-label path, which refuses it and names both readings.
    """
    assert parsed.sets is not None  # noqa: S101 - internal invariant
    if parsed.form == "lists":
        return parsed.has_multi_or_empty
    return any(len(row) > 1 for row in parsed.sets)


def reads_as_names(sets: list[tuple[Any, ...]]) -> bool:
    """Whether label strings split on spaces are rather class names with spaces ("Food & Drink"): no row is empty
    (no tag), no word of a several-word label is ever a label alone, and there are no more distinct labels than
    distinct words. Tags recombine ("3 7", "7", "1 3"): their sets outnumber their words, or a tag also stands
    alone."""
    words = {word for row in sets for word in row}
    several = {word for row in sets if len(row) > 1 for word in row}
    alone = {row[0] for row in sets if len(row) == 1}
    return () not in sets and not (several & alone) and len(set(sets)) <= len(words)


def parse(labels: Any, *, label_sep: str | None, split: bool, whole_names: bool = False) -> Parsed:
    check_label_sep(label_sep)
    if isinstance(labels, pd.DataFrame):
        if labels.shape[1] == 1:
            return parse(labels.iloc[:, 0], label_sep=label_sep, split=split)
        return _parse_indicator(labels.to_numpy(), names=[_scalar(c) for c in labels.columns])
    if is_tensor(labels):
        labels = as_numpy(labels)
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        return _parse_indicator(labels, names=list(range(labels.shape[1])))
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable) or getattr(labels, "ndim", 1) != 1:
        # An array's repr spans lines; its shape says what is wrong with it.
        is_array = isinstance(labels, np.ndarray)
        found = f"an array of shape {labels.shape}" if is_array else f"{type(labels).__name__} {labels!r}"
        raise LabelError(
            f"labels must be a sequence with one entry per item, got {found}. "
            "Pass a list, 1-D array, Series or DataFrame column (or a 2-D 0/1 indicator matrix)."
        )
    values = list(labels.tolist() if isinstance(labels, (np.ndarray, pd.Series)) else labels)
    if values and _looks_like_indicator_rows(values):
        return _parse_indicator(np.asarray(values, dtype=np.float64), names=list(range(len(values[0]))))
    if values and all(_is_collection(v) for v in values if not is_missing(v)) and not all(map(is_missing, values)):
        _check_collections(values)
        sets = [() if is_missing(v) else _label_set(v) for v in values]
        return Parsed(form="lists", sets=sets, singles=[row[0] if len(row) == 1 else None for row in sets])
    plain = set(map(type, values)) <= _PLAIN_TYPES
    if not plain:  # numpy scalars, floats, collections: per item; 10^6 plain labels skip these loops
        values = [_scalar(v) for v in values]
        _check_hashable(values)
    strings = [v for v in values if isinstance(v, str)]
    if split and strings and len(strings) == _num_present(values, plain=plain):
        # Read as delimited even when no separator occurs: the tokens are stripped exactly as `encode` strips them.
        sep = label_sep if label_sep is not None else _detect_separator(strings)
        parsed = _parse_delimited(values, sep)
        if whole_names and label_sep is None and sep == " " and parsed.sets and reads_as_names(parsed.sets):
            example = next(v for v in strings if " " in v.strip())
            note = (f" Labels such as {example!r} are read as whole class names: no word of them is ever a label "
                    "alone (pass task='multilabel' to split them on spaces).")  # fmt: skip
            return Parsed(form=_form_of(values), singles=values, note=note)
        return parsed
    return Parsed(form=_form_of(values), singles=values)


# Labels of these types are already what `_scalar` returns, and hashable.
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def _num_present(values: list[Any], *, plain: bool) -> int:
    # Among plain labels only None is missing, and list.count runs without a Python call per label.
    return len(values) - values.count(None) if plain else sum(not is_missing(v) for v in values)


def check_label_sep(label_sep: Any) -> None:
    if label_sep is not None and (not isinstance(label_sep, str) or not label_sep):
        raise ConfigError(
            f"label_sep={label_sep!r}; expected a non-empty string such as ' ', ';' or ','. "
            "Pass the separator of the multilabel strings (CLI: --label-sep), or leave it out to detect it."
        )


def _check_hashable(values: list[Any]) -> None:
    """A list or dict among single labels cannot be a class (and pandas would fail on it with a bare TypeError)."""
    bad = [i for i, v in enumerate(values) if _is_collection(v) or not isinstance(v, Hashable)]
    if bad:
        found = format_examples(list(dict.fromkeys(type(values[i]).__name__ for i in bad)))
        raise LabelError(
            f"{format_rows(bad)} {_hold(bad)} a {found} where one label (str, int or bool) was expected. "
            "Give every row one label, or every row a list/set of labels."
        )


def _check_collections(values: list[Any]) -> None:
    """Each collection must hold labels: no nested collections, no missing or empty labels inside."""
    nested, missing = [], []
    for i, row in enumerate(values):
        items = [] if is_missing(row) else [_scalar(x) for x in row]
        if any(_is_collection(x) or not isinstance(x, Hashable) for x in items):
            nested.append(i)
        elif any(is_missing(x) or (isinstance(x, str) and not x.strip()) for x in items):
            missing.append(i)
    if nested:
        raise LabelError(
            f"{format_rows(nested)} {_hold(nested)} collections nested inside the row's collection of labels; "
            "expected one flat list/set of labels (str, int or bool) per item. Flatten those rows."
        )
    if missing:
        raise LabelError(
            f"{format_rows(missing)} {_hold(missing)} a missing or empty label inside the collection of labels. "
            "Drop those entries: an empty collection already means 'no label'."
        )


def _parse_delimited(values: list[Any], sep: str | None) -> Parsed:
    if sep is None and set(map(type, values)) == {str}:
        # No separator: each label string is one label (10^6 single labels read without splitting each one).
        stripped = [v.strip() for v in values]
        return Parsed(form="delimited", sets=[(t,) if t else () for t in stripped], singles=values, sep=None)
    sets = []
    for v in values:
        text = "" if is_missing(v) else str(v).strip()
        parts = text.split(sep) if sep is not None else [text]
        sets.append(_label_set(p.strip() for p in parts if p.strip()))
    return Parsed(form="delimited", sets=sets, singles=values, sep=sep)


def free_separator(classes: Iterable[Any]) -> str:
    """The first separator no class contains (space first, the default), so joined labels split back."""
    names = [c for c in classes if isinstance(c, str)]
    return next((sep for sep in (" ", ";", ",") if not any(sep in name for name in names)), " ")


def _detect_separator(strings: list[str]) -> str | None:
    # One joined text searched per separator, instead of a Python loop over the labels per separator.
    joined = "\n".join(s.strip() for s in strings)
    present = [sep for sep in _AUTO_SEPARATORS if sep in joined]
    if len(present) > 1:
        raise LabelError(
            f"labels contain several possible separators {present!r} "
            f"(e.g. {next(s for s in strings if present[0] in s)!r}); "
            "expected one. Pass `label_sep=` (CLI: --label-sep) to say which one splits labels, "
            "or task='multiclass' to keep each string whole."
        )
    return present[0] if present else None


def _parse_indicator(matrix: np.ndarray, *, names: list[Any]) -> Parsed:
    if matrix.dtype == object:
        try:
            matrix = matrix.astype(np.float64)
        except (TypeError, ValueError):
            raise LabelError(
                "several target columns were given, so they were read as a 0/1 indicator matrix, but they hold "
                "non-numeric values. Expected 0/1 (or True/False) in every target column; "
                "pass one label column instead."
            ) from None
    bad = ~np.isin(matrix, (0, 1))
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise LabelError(
            f"an indicator target must hold only 0/1, found other values ({format_examples(matrix[bad].tolist())}) in "
            f"{format_rows(rows.tolist())}. Fix those rows, or pass a single label column instead."
        )
    if len(set(names)) != len(names):
        raise LabelError(f"indicator target columns must have distinct names, got {names!r}.")
    return Parsed(form="indicator", indicator=matrix.astype(np.float32), indicator_names=names)


# -- small helpers ---------------------------------------------------------------------------------
def _hold(rows: Sequence[int]) -> str:
    return "holds" if len(rows) == 1 else "hold"


def _scalar(value: Any) -> Any:
    """Python scalar from numpy/pandas scalars; integral floats become ints (CSV ints read as float with NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isnan(value) and value.is_integer():
        return int(value)
    return value


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT


def _is_collection(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))


def _label_set(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(_scalar(v) for v in values))


def _looks_like_indicator_rows(values: list[Any]) -> bool:
    """Equal-length lists/tuples of 0/1 are indicator rows; label collections are read from sets or ragged lists."""
    if not all(isinstance(v, (list, tuple, np.ndarray)) for v in values):
        return False
    width = len(values[0])
    return width >= 2 and all(len(v) == width and all(map(_is_01, v)) for v in values)


def _is_01(value: Any) -> bool:
    # Type first: `pd.NA in (0, 1)` raises, and an array compares elementwise.
    value = _scalar(value)
    return isinstance(value, (int, float)) and value in (0, 1)


def _form_of(values: list[Any]) -> str:
    types = set(map(type, values)) - {type(None)}
    if types <= _PLAIN_TYPES and len(types) == 1:  # one plain type: the answer without a pass per label
        return {str: "strings", int: "ints", bool: "bools"}[types.pop()]
    present = [v for v in values if not is_missing(v)]
    if present and all(isinstance(v, bool) for v in present):
        return "bools"
    if present and all(isinstance(v, int) for v in present):
        return "ints"
    return "strings"


def check_no_missing(values: list[Any], task: Task | None) -> list[Any]:
    if set(map(type, values)) <= _PLAIN_TYPES:  # the same test without a call per label
        missing = [i for i, v in enumerate(values) if v is None or (v.__class__ is str and not v.strip())]
    else:
        missing = [i for i, v in enumerate(values) if is_missing(v) or (isinstance(v, str) and not v.strip())]
    if missing:
        fix = (
            "Drop those rows (unlabelled items cannot be learned from), or, if empty means 'no label', "
            "pass task='multilabel' (CLI: --task multilabel) so that an item may have none."
        )
        raise LabelError(f"single-label data has missing or empty labels in {format_rows(missing)}. {fix}")
    return values


def check_one_per_item(parsed: Parsed, kind: str) -> None:
    """Collections of several labels cannot feed a single-label Task (they are not missing labels either)."""
    sets = parsed.sets or []
    several = [i for i, row in enumerate(sets) if len(row) > 1]
    if several:
        raise LabelError(
            f"{format_rows(several)} {_hold(several)} several labels (e.g. {sets[several[0]]!r}), but a {kind} "
            "Task takes exactly one label per item. Use task='multilabel' (CLI: --task multilabel) for such data."
        )


def check_one_type(values: list[Any], *, rows: Sequence[int] | None = None) -> None:
    """One label type (str, int or bool) in all ``values``; ``rows`` maps each value to its row (default: itself)."""
    if len(types := set(map(type, values))) == 1 and types <= {str, int, bool}:
        return  # one plain type: nothing to report, and no per-row bookkeeping for 10^6 labels
    rows = range(len(values)) if rows is None else rows
    kinds: dict[str, list[int]] = {}
    for row, v in zip(rows, values, strict=True):
        name = "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__
        where = kinds.setdefault(name, [])
        if not where or where[-1] != row:
            where.append(row)
    if any(isinstance(v, float) for v in values):
        floats = [v for v in values if isinstance(v, float)]
        raise LabelError(
            f"the target holds non-integer numbers ({format_examples(sorted(set(floats)))}) in "
            f"{format_rows(sorted({r for r, v in zip(rows, values, strict=True) if isinstance(v, float)}))}; "
            "a classifier needs discrete labels (strings, integers or booleans). Bin the values into classes first."
        )
    parts = "; ".join(f"{name} in {format_rows(where)}" for name, where in kinds.items())
    if set(kinds) - {"str", "number", "bool"}:
        # A class must survive labelwise.json: JSON holds strings, integers and booleans.
        raise LabelError(
            f"labels must be strings, integers or booleans, found {parts}. "
            "Convert the column with `.astype(str)` (or map the values to class names) first."
        )
    if len(kinds) > 1:
        raise LabelError(
            f"the target mixes label types: {parts}. Expected one type per target; convert the column with "
            "`.astype(str)` so that e.g. 1 and '1' are the same label."
        )


def check_classes(classes: Iterable[Any]) -> tuple[Any, ...]:
    """Classes as Python scalars; labelwise.json must hold them, and JSON has strings, integers and booleans."""
    out = tuple(classes)
    if not set(map(type, out)) <= _PLAIN_TYPES - {type(None)}:  # 10^6 plain classes skip the per-class loops
        out = tuple(_scalar(c) for c in out)
    odd = [] if set(map(type, out)) <= {str, int, bool} else [c for c in out if not isinstance(c, (str, int))]
    if odd:
        raise LabelError(
            f"classes must be strings, integers or booleans, got {format_examples(odd)}. "
            "Convert the labels with `.astype(str)` (or map them to class names) first."
        )
    return out


def check_known(values: Sequence[Any], indices: np.ndarray, task: Task, *, rows: np.ndarray | None = None) -> None:
    unknown = np.flatnonzero(indices < 0)
    if unknown.size:
        unseen = list(dict.fromkeys(values[int(i)] for i in unknown))
        where = rows[unknown] if rows is not None else unknown
        raise LabelError(
            f"labels the model was never trained on: {format_examples(unseen)} in "
            f"{format_rows(sorted(set(where.tolist())))}. Expected one of the {task.num_classes} classes "
            f"{format_examples(task.classes)}. Drop those rows, or retrain with them."
        )


def indicator_to_indices(matrix: np.ndarray, names: list[Any] | None, task: Task | None) -> np.ndarray:
    per_row = matrix.sum(axis=1)
    bad = np.flatnonzero(per_row != 1)
    if bad.size:
        raise LabelError(
            f"single-label targets need exactly one 1 per row in the indicator matrix; "
            f"{format_rows(bad.tolist())} hold 0 or several. Use task='multilabel' for such data."
        )
    if task is not None and names is not None and len(names) > task.num_classes:
        # A single-label Task inferred from an indicator holds only the columns that occur: look the names up.
        labels = [names[j] for j in matrix.argmax(axis=1)]
        indices = pd.Index(pd.Series(task.classes, dtype=object)).get_indexer(pd.Series(labels, dtype=object))
        check_known(labels, indices, task)
        return np.asarray(indices, dtype=np.int64)
    if task is not None and names is not None:
        matrix = align_indicator(matrix, names, task)
    return np.asarray(matrix.argmax(axis=1), dtype=np.int64)


def align_indicator(matrix: np.ndarray, names: list[Any] | None, task: Task) -> np.ndarray:
    names = names if names is not None else list(range(matrix.shape[1]))
    if names == list(task.classes):
        return matrix.astype(np.float32)
    if sorted(map(str, names)) == sorted(map(str, task.classes)) and len(names) == task.num_classes:
        order = [list(map(str, names)).index(str(c)) for c in task.classes]
        return matrix[:, order].astype(np.float32)
    if names == list(range(matrix.shape[1])) and matrix.shape[1] == task.num_classes:
        return matrix.astype(np.float32)
    raise LabelError(
        f"the indicator columns {format_examples(names)} do not match the model's classes "
        f"{format_examples(task.classes)}. Pass the same target columns as at training."
    )
