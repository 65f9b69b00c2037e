"""Property tests for `infer_task` and `Task.encode` / `decode` / `to_dict` over random labels.

Each property writes the design's rule table (``../shared/design.md``, "The Task") out independently of the
parser and checks the library against it, over every spelling people hold labels in: ints, bools, strings
(unicode, emoji, whitespace of every kind, separators inside labels), delimited strings, lists/sets per item,
indicator matrices, pandas Series and numpy arrays / tensors. Canonical forms, as the Task reads them:

- single labels: the value as given, numpy/pandas scalars as Python scalars, integral floats as ints;
- delimited strings: the set of stripped, non-empty tokens (``""`` = no label);
- collections: the set of their items; indicator rows: the set of column names holding a 1.

Bad input of every kind must raise a `LabelwiseError` that names the offending rows, never a bare builtin error.
Run with ``--hypothesis-show-statistics`` to see how many examples each property drew.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from labelwise.errors import ConfigError, LabelError, LabelwiseError, format_examples, format_rows
from labelwise.task import KIND_HEADS, Label, Task, TaskKind, infer_task, join_labels


def _settings(max_examples: int) -> settings:
    # derandomize: the same examples on every run and machine (no flaky CI); database=None: nothing written.
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


_AUTO_SEPARATORS = (";", ",", " ")
# Whitespace str.strip() removes beyond the ASCII space: NBSP, ideographic space, tab, line and paragraph breaks.
_WHITESPACE = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2029", "\r\n"])
_PAD = st.one_of(st.just(""), _WHITESPACE)
# Any text a cell can hold, without surrogates (not encodable) or NUL (numpy's fixed-width strings drop it).
_ANY_CHAR = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_TRICKY_WORDS = ["🐱", "🏳️‍🌈", "İ", "ß", "ǅ", "a\u0301", "ﬁ", "Ω", "1", "True", "None", "nan", "Ⅻ", "٣"]
_TRICKY_TEXT = st.sampled_from([*_TRICKY_WORDS, "\u200b", "a b", "x;y", " pad ", "\u00a0"])
# Labels that contain no separator and no whitespace: they survive every reading unchanged.
_WORD = st.one_of(
    st.text(
        st.characters(exclude_categories=["Cs", "Cc", "Z"], exclude_characters=";,\x00\x1c\x1d\x1e\x1f\x85"),
        min_size=1,
        max_size=6,
    ).filter(lambda s: s == s.strip()),
    st.sampled_from(_TRICKY_WORDS),
)
_INTS = st.one_of(st.integers(-3, 12), st.integers(-(2**62), 2**62))


def _rows_named(rows: list[int]) -> str:
    """A regex for exactly these rows as messages name them (not a prefix of a longer list)."""
    return re.escape(format_rows(rows)) + r"(?!\d|, \d| and \d)"


def _is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


# ---------------------------------------------------------------------------------------------
# The rule table, written out
# ---------------------------------------------------------------------------------------------
def _single_kind(classes: set[Any]) -> TaskKind:
    """Binary: exactly 2 classes, one per item; multiclass: 3 or more, one per item."""
    return TaskKind.BINARY if len(classes) == 2 else TaskKind.MULTICLASS


def _tokens(text: str, sep: str | None) -> frozenset[str]:
    """The canonical label set of a delimited string: stripped, split, stripped tokens, empties dropped."""
    stripped = text.strip()
    parts = stripped.split(sep) if sep is not None else [stripped]
    return frozenset(p.strip() for p in parts if p.strip())


def _auto_separator(strings: list[str]) -> str | None:
    present = [sep for sep in _AUTO_SEPARATORS if any(sep in s.strip() for s in strings)]
    if len(present) > 1:
        raise AssertionError("ambiguous")  # the caller checks the library refuses it
    return present[0] if present else None


def _assert_json_round_trip(task: Task) -> None:
    """labelwise.json stores `to_dict`; what comes back must be the same Task, encoding the same way."""
    again = Task.from_dict(json.loads(json.dumps(task.to_dict(), allow_nan=False)))
    assert again == task
    assert again.classes == task.classes and [type(c) for c in again.classes] == [type(c) for c in task.classes]
    assert (again.head_width, again.target_dtype, again.label_sep) == (
        task.head_width,
        task.target_dtype,
        task.label_sep,
    )


def _decode_targets(task: Task, targets: torch.Tensor) -> list[Any]:
    """decode(encode(y)): encode's own output is what decode must accept."""
    return task.decode(targets)


def _check_single_round_trip(task: Task, labels: Any, expected: list[Any]) -> None:
    targets = task.encode(labels)
    assert targets.dtype == task.target_dtype and targets.shape == (len(expected),)
    assert _decode_targets(task, targets) == expected
    assert [type(v) for v in _decode_targets(task, targets)] == [type(v) for v in expected]


def _check_multilabel_round_trip(task: Task, labels: Any, expected: list[frozenset[Any]]) -> None:
    targets = task.encode(labels)
    assert targets.dtype == torch.float32 and targets.shape == (len(expected), task.num_classes)
    decoded = _decode_targets(task, targets)
    assert [frozenset(row) for row in decoded] == expected
    order = {c: i for i, c in enumerate(task.classes)}
    assert all(list(row) == sorted(row, key=order.__getitem__) for row in decoded)  # in `classes` order


# ---------------------------------------------------------------------------------------------
# Spellings
# ---------------------------------------------------------------------------------------------
def _spell_singles(values: list[Any], how: str) -> Any:
    """The same single labels as a list, tuple, Series or array (and their numeric variants)."""
    spellings: dict[str, Callable[[], Any]] = {
        "list": lambda: list(values),
        "tuple": lambda: tuple(values),
        "series": lambda: pd.Series(values, dtype=object, index=np.arange(len(values)) * 3 + 7),
        "array": lambda: np.array(values, dtype=object),
        "typed-array": lambda: np.array(values),
        "string-series": lambda: pd.Series(values, dtype="string"),
        "category": lambda: pd.Series(values, dtype="category"),
        "tensor": lambda: torch.tensor(values),
        "float-array": lambda: np.array(values, dtype=np.float64),  # ints read from a CSV with gaps
        "numpy-scalars": lambda: [np.int64(v) if type(v) is int else np.bool_(v) for v in values],
    }
    return spellings[how]()


_STRING_SPELLINGS = ["list", "tuple", "series", "array", "typed-array", "string-series", "category"]
_INT_SPELLINGS = ["list", "tuple", "series", "array", "typed-array", "category", "tensor", "numpy-scalars"]
_BOOL_SPELLINGS = ["list", "series", "typed-array", "tensor", "numpy-scalars"]


@st.composite
def _single_labels(draw: st.DrawFn, *, text: st.SearchStrategy[str] | None = None) -> tuple[list[Any], str]:
    """2..7 distinct classes of one type, each used at least once, in random order; and a spelling."""
    atom_type = draw(st.sampled_from(["int", "bool", "str"]))
    if atom_type == "bool":
        classes: list[Any] = [False, True]
        how = draw(st.sampled_from(_BOOL_SPELLINGS))
    elif atom_type == "int":
        small = draw(st.booleans())
        classes = draw(st.lists(st.integers(-3, 12) if small else _INTS, min_size=2, max_size=7, unique=True))
        how = draw(st.sampled_from([*_INT_SPELLINGS, "float-array"] if small else _INT_SPELLINGS))
    else:
        word = text if text is not None else st.builds(lambda a, w, b: a + w + b, _PAD, _WORD, _PAD)
        classes = draw(st.lists(word, min_size=2, max_size=7, unique=True))
        how = draw(st.sampled_from(_STRING_SPELLINGS))
    extra = draw(st.lists(st.sampled_from(classes), max_size=20))
    values = draw(st.permutations(classes + extra))
    return values, how


# ---------------------------------------------------------------------------------------------
# Properties: inference follows the rule table, and encode/decode round-trip
# ---------------------------------------------------------------------------------------------
def _reads_positive(label: Any) -> bool:
    """The positive names `infer_task` documents, written out here rather than imported from it."""
    if isinstance(label, bool):
        return label
    if isinstance(label, int):
        return label == 1
    return label.strip().lower() in {"1", "1.0", "+1", "y", "yes", "t", "true", "on", "pos", "positive"}


@_settings(200)
@given(case=_single_labels())
def test_single_labels_infer_binary_or_multiclass(case: tuple[list[Any], str]) -> None:
    """One label per item: 2 classes -> binary (positive: the one positive name, else the rarer), 3+ -> multiclass."""
    values, how = case
    labels = _spell_singles(values, how)
    task = infer_task(labels)
    event(f"{task.kind} from {type(values[0]).__name__} labels")
    assert task.kind is _single_kind(set(values))
    assert set(task.classes) == set(values) and task.reason.startswith(str(task.kind))
    if task.kind is TaskKind.BINARY:
        named = [c for c in set(values) if _reads_positive(c)]
        if len(named) == 1:  # a positive name wins whatever the counts
            assert task.positive == named[0]
        else:  # none or both: the rarer class
            assert values.count(task.positive) <= values.count(task.classes[0])
    _check_single_round_trip(task, labels, values)
    _assert_json_round_trip(task)


@_settings(150)
@given(
    case=_single_labels(text=st.one_of(st.text(_ANY_CHAR, min_size=1, max_size=8), _TRICKY_TEXT)),
    binary_head=st.sampled_from(["one", "two"]),
)
def test_forced_single_label_kind_keeps_any_text_whole(case: tuple[list[Any], str], binary_head: str) -> None:
    """task='multiclass'/'binary' keeps each label whole: separators, emoji and whitespace are part of it."""
    values, how = case
    assume(not any(_is_blank(v) for v in values))
    kind = _single_kind(set(values))
    task = infer_task(_spell_singles(values, how), kind=str(kind), binary_head=binary_head)  # type: ignore[arg-type]
    assert task.kind is kind and set(task.classes) == set(values)
    _check_single_round_trip(task, _spell_singles(values, how), values)
    _assert_json_round_trip(task)


def _fits(word: str, sep: str | None) -> bool:
    """A label can be written with ``sep`` when it holds none of its characters (auto: none of the three)."""
    if sep is None:
        return not any(s in word for s in _AUTO_SEPARATORS)
    return not any(ch in word for ch in sep.strip() or sep)


_PADDED_WORD = st.tuples(_PAD, st.one_of(_WORD, _WORD.map(lambda w: f"{w} {w}"), _WORD.map(lambda w: f"{w};{w}")), _PAD)
_PADDED_ROW = st.tuples(_PAD, st.lists(_PADDED_WORD, max_size=4), _PAD)


@_settings(200)
@given(
    rows=st.lists(_PADDED_ROW, min_size=1, max_size=25),
    sep=st.sampled_from([None, " ", ";", ",", "|", " | ", "\t", "::"]),
    auto_written_with=st.sampled_from(_AUTO_SEPARATORS),
    forced=st.booleans(),
)
def test_delimited_strings_follow_the_rule_table(
    rows: list[tuple[str, list[tuple[str, str, str]], str]], sep: str | None, auto_written_with: str, forced: bool
) -> None:
    """Any item with 0 or 2+ labels -> multilabel; single labels only -> binary/multiclass of the raw strings.

    Every label is padded with whitespace of any kind and the first is repeated. With an explicit ``label_sep``
    a label may hold the other separators (``"new york"`` split on ``;``). An empty string among single labels
    is refused (is it a missing label or "none"?) naming its rows.
    """
    joiner = sep if sep is not None else auto_written_with
    kept = [[(a, w, b) for a, w, b in padded if _fits(w, sep)] for _, padded, _ in rows]
    strings = [
        before + joiner.join(a + w + b for a, w, b in row + row[:1]) + after
        for (before, _, after), row in zip(rows, kept, strict=True)
    ]
    sets = [frozenset(w for _, w, _ in row) for row in kept]
    union = set().union(*sets)
    kind = "multilabel" if forced else None
    if sep is None and sum(any(s in text.strip() for text in strings) for s in _AUTO_SEPARATORS) > 1:
        event("refused: several separators")
        with pytest.raises(LabelError, match="several possible separators.*`label_sep=`"):
            infer_task(strings, kind=kind)
        return
    read_sep = sep if sep is not None else _auto_separator(strings)
    assert [_tokens(s, read_sep) for s in strings] == sets  # the written-out rule reads what was written
    if forced or any(len(row) > 1 for row in sets):
        if len(union) < 2:
            event("refused: fewer than two labels")
            with pytest.raises(LabelError, match="no item has any label|single class"):
                infer_task(strings, kind=kind, label_sep=sep)
            return
        task = infer_task(strings, kind=kind, label_sep=sep)
        event("multilabel" + (" (asked for)" if forced else ""))
        assert task.kind is TaskKind.MULTILABEL and set(task.classes) == union
        assert read_sep is None or task.label_sep == read_sep
        _check_multilabel_round_trip(task, strings, sets)
        written = join_labels(task.decode(task.encode(strings).bool()), sep=task.label_sep)
        _check_multilabel_round_trip(task, written, sets)  # predictions.csv reads back to the same sets
        _assert_json_round_trip(task)
        return
    _check_singles_or_refusal(strings, sep)


def _check_singles_or_refusal(strings: list[str], sep: str | None) -> None:
    blank = [i for i, s in enumerate(strings) if _is_blank(s)]
    if blank:
        event("refused: empty single label")
        with pytest.raises(LabelError, match=f"missing or empty labels in {_rows_named(blank)}.*task='multilabel'"):
            infer_task(strings, label_sep=sep)
        return
    if len(set(strings)) < 2:
        event("refused: one class")
        with pytest.raises(LabelError, match="one class"):
            infer_task(strings, label_sep=sep)
        return
    task = infer_task(strings, label_sep=sep)
    event(str(task.kind))
    assert task.kind is _single_kind(set(strings)) and set(task.classes) == set(strings)
    _check_single_round_trip(task, strings, strings)


_MESSY_TEXT = st.text(st.sampled_from(list("ab ;,\t\u00a0é🐱")), max_size=6)


@_settings(200)
@given(strings=st.lists(_MESSY_TEXT, min_size=1, max_size=20), sep=st.sampled_from([None, " ", ";", ",", "é"]))
def test_any_strings_follow_the_rule_table(strings: list[str], sep: str | None) -> None:
    """Arbitrary strings of letters, separators and whitespace: the written-out rule decides, or an error names why."""
    if sep is None and sum(any(s in text.strip() for text in strings) for s in _AUTO_SEPARATORS) > 1:
        event("refused: several separators")
        with pytest.raises(LabelError, match="several possible separators"):
            infer_task(strings)
        return
    read_sep = sep if sep is not None else _auto_separator(strings)
    sets = [_tokens(s, read_sep) for s in strings]
    if not any(len(row) > 1 for row in sets):
        _check_singles_or_refusal(strings, sep)
        return
    task = infer_task(strings, label_sep=sep)
    event("multilabel")
    assert task.kind is TaskKind.MULTILABEL and set(task.classes) == set().union(*sets)
    _check_multilabel_round_trip(task, strings, sets)
    _assert_json_round_trip(task)


_CONTAINERS: dict[str, Callable[[list[Any]], Any]] = {
    "list": list,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "array": lambda row: np.array(row, dtype=object),
}


@st.composite
def _collections(draw: st.DrawFn) -> tuple[list[Any], list[frozenset[Any]]]:
    atoms = draw(
        st.sampled_from(
            [
                st.booleans(),
                st.integers(0, 1),  # 0/1 labels: equal-width rows of them read as indicator rows
                _INTS,
                _WORD,
                st.text(_ANY_CHAR, min_size=1, max_size=6).filter(lambda s: s.strip() != ""),
            ]
        )
    )
    # Free-form rows, or one label per row (single-label), or equal-width rows (indicator-like when 0/1).
    shape = draw(st.sampled_from(["free", "singletons", "equal-width"]))
    width = {"free": (0, 4), "singletons": (1, 1), "equal-width": (2, 2)}[shape]
    rows = draw(st.lists(st.lists(atoms, min_size=width[0], max_size=width[1]), min_size=1, max_size=20))
    containers = draw(st.lists(st.sampled_from(sorted(_CONTAINERS)), min_size=len(rows), max_size=len(rows)))
    spelled = [_CONTAINERS[c](row) for c, row in zip(containers, rows, strict=True)]
    for i in draw(st.lists(st.sampled_from(range(len(rows))), max_size=3)):
        if not rows[i]:
            spelled[i] = draw(st.sampled_from([None, float("nan")]))  # a missing row = an empty collection
    return spelled, [frozenset(row) for row in rows]


def _reads_as_indicator(rows: list[Any]) -> bool:
    """The documented reading: equal-width lists/tuples/arrays (width >= 2) of 0/1 are indicator rows."""
    if not all(isinstance(r, (list, tuple, np.ndarray)) for r in rows):
        return False
    width = len(rows[0])
    return width >= 2 and all(len(r) == width and all(x in (0, 1) and not isinstance(x, str) for x in r) for r in rows)


@_settings(200)
@given(case=_collections(), as_series=st.booleans())
def test_label_collections_follow_the_rule_table(case: tuple[list[Any], list[frozenset[Any]]], as_series: bool) -> None:
    """A collection per item: any item with 0 or 2+ labels -> multilabel, else binary/multiclass of the singletons."""
    rows, sets = case
    labels = pd.Series(rows, dtype=object) if as_series else rows
    indicator = _reads_as_indicator(rows)
    if indicator:  # every column is a class, whether or not it holds a 1
        sets = [frozenset(j for j, x in enumerate(r) if x == 1) for r in rows]
    union = set(range(len(rows[0]))) if indicator else set().union(*sets)
    if len(union) < 2 or not any(sets):
        # All rows missing reads as a single-label column of missing labels; either way the rows are named.
        event("refused: fewer than two labels")
        with pytest.raises(LabelError, match="no item has any label|one class|single class|missing or empty labels"):
            infer_task(labels)
        return
    task = infer_task(labels)
    event(f"{task.kind}" + (" (indicator rows)" if indicator else ""))
    if indicator or any(len(row) != 1 for row in sets):
        assert task.kind is TaskKind.MULTILABEL and set(task.classes) == union
        _check_multilabel_round_trip(task, labels, sets)
        names = [c for c in task.classes if isinstance(c, str) and c == c.strip()]
        if len(names) == task.num_classes and not all(any(s in c for c in names) for s in _AUTO_SEPARATORS):
            # label_sep is one no class holds, so written predictions split back into the same labels.
            assert not any(task.label_sep in c for c in names)
            written = join_labels(task.decode(task.encode(labels).bool()), sep=task.label_sep)
            _check_multilabel_round_trip(task, written, sets)
    else:
        assert task.kind is _single_kind(union) and set(task.classes) == union
        _check_single_round_trip(task, labels, [next(iter(row)) for row in sets])
    _assert_json_round_trip(task)


@st.composite
def _indicator(draw: st.DrawFn) -> tuple[np.ndarray, list[Any] | None]:
    num_rows = draw(st.integers(1, 20))
    width = draw(st.integers(2, 6))
    matrix = np.array(draw(st.lists(st.lists(st.integers(0, 1), min_size=width, max_size=width), min_size=num_rows,
                                    max_size=num_rows)))  # fmt: skip
    names = draw(
        st.one_of(
            st.none(),
            st.lists(_WORD, min_size=width, max_size=width, unique=True),
            st.lists(st.integers(-5, 50), min_size=width, max_size=width, unique=True),
        )
    )
    return matrix, names


def _spell_indicator(matrix: np.ndarray, names: list[Any] | None, how: str) -> Any:
    if names is not None:
        return pd.DataFrame(matrix.astype(how if how in ("bool", "float64") else np.int64), columns=names)
    spellings: dict[str, Callable[[], Any]] = {
        "int64": lambda: matrix,
        "bool": lambda: matrix.astype(bool),
        "float64": lambda: matrix.astype(np.float64),
        "tensor": lambda: torch.from_numpy(matrix).float(),
        "rows": lambda: matrix.tolist(),
    }
    return spellings[how]()


@_settings(150)
@given(case=_indicator(), how=st.sampled_from(["int64", "bool", "float64", "tensor", "rows"]), shuffle=st.randoms())
def test_indicator_matrices_are_multilabel(case: tuple[np.ndarray, list[Any] | None], how: str, shuffle: Any) -> None:
    """Indicator targets -> multilabel whose classes are the columns; encode aligns columns by name."""
    matrix, names = case
    labels = _spell_indicator(matrix, names, how)
    classes = names if names is not None else list(range(matrix.shape[1]))
    event(f"indicator as {'DataFrame' if names is not None else how}")
    if not matrix.any():
        with pytest.raises(LabelError, match=f"all {len(matrix)} rows are empty"):
            infer_task(labels)
        return
    task = infer_task(labels)
    assert task.kind is TaskKind.MULTILABEL and list(task.classes) == classes
    sets = [frozenset(classes[j] for j in np.flatnonzero(row)) for row in matrix]
    _check_multilabel_round_trip(task, labels, sets)
    if names is not None:
        order = list(range(len(names)))
        shuffle.shuffle(order)
        _check_multilabel_round_trip(task, labels.iloc[:, order], sets)
    _assert_json_round_trip(task)
    one_hot = matrix.sum(axis=1) == 1
    if one_hot.all() and len({int(np.argmax(r)) for r in matrix}) >= 2:
        present = {classes[int(np.argmax(r))] for r in matrix}
        kind = _single_kind(present)
        single = infer_task(labels, kind=str(kind))
        assert single.kind is kind and set(single.classes) == present
        expected = [classes[int(np.argmax(r))] for r in matrix]
        assert single.decode(single.encode(labels)) == expected
    elif not one_hot.all():
        with pytest.raises(LabelError, match=f"{_rows_named(np.flatnonzero(~one_hot).tolist())} hold 0 or several"):
            infer_task(labels, kind="multiclass")


# ---------------------------------------------------------------------------------------------
# Property: to_dict / from_dict
# ---------------------------------------------------------------------------------------------
@st.composite
def _tasks(draw: st.DrawFn) -> Task:
    kind = draw(st.sampled_from(list(TaskKind)))
    # Blank strings are missing labels, never classes: `infer_task` refuses them.
    text = st.one_of(st.text(_ANY_CHAR, min_size=1, max_size=8), _TRICKY_TEXT).filter(lambda s: not _is_blank(s))
    size = 2 if kind is TaskKind.BINARY else draw(st.integers(2 if kind is TaskKind.MULTILABEL else 3, 8))
    atoms = draw(st.sampled_from([_INTS, text, st.booleans()] if size == 2 else [_INTS, text]))
    classes = cast("list[Label]", draw(st.lists(atoms, min_size=size, max_size=size, unique=True)))
    return Task(
        kind=kind,
        classes=tuple(classes),
        reason=draw(st.text(_ANY_CHAR, max_size=30)),
        label_sep=draw(st.one_of(st.sampled_from(_AUTO_SEPARATORS), st.text(_ANY_CHAR, min_size=1, max_size=3))),
        head=draw(st.sampled_from(KIND_HEADS[kind])),
    )


@_settings(200)
@given(task=_tasks())
def test_to_dict_from_dict_round_trip(task: Task) -> None:
    """Through JSON and back: the same Task, classes of the same types, the same encoding."""
    _assert_json_round_trip(task)
    again = Task.from_dict(json.loads(json.dumps(task.to_dict())))
    labels = list(task.classes)
    if task.kind is TaskKind.MULTILABEL:
        labels = [[c] for c in task.classes]  # type: ignore[misc]
    assert torch.equal(again.encode(labels), task.encode(labels))


_BAD_FIELDS: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda d: {k: v for k, v in d.items() if k != "kind"}, "needs 'kind'"),
    (lambda d: {k: v for k, v in d.items() if k != "classes"}, "needs 'kind' and a list of 'classes'"),
    (lambda d: d | {"kind": "regression"}, "not one of binary, multiclass, multilabel"),
    (lambda d: d | {"kind": ["binary"]}, "not one of"),
    (lambda d: d | {"classes": "ab"}, "list of 'classes'"),
    (lambda d: d | {"classes": [["a"], ["b"]]}, "strings, integers or booleans"),
    (lambda d: d | {"classes": [1.5, 2.5]}, "strings, integers or booleans"),
    (lambda d: d | {"classes": ["a"]}, "at least two classes"),
    (lambda d: d | {"classes": ["a", "a"]}, "distinct"),
    (lambda d: d | {"label_sep": ""}, "non-empty string"),
    (lambda d: d | {"label_sep": 3}, "non-empty string"),
    (lambda d: d | {"head": "three"}, "not a head type"),
    (lambda d: d | {"head": "one_vs_rest", "kind": "multilabel"}, "does not fit a multilabel Task"),
    # The format before `head`: its fields are still read, and checked.
    (lambda d: {k: v for k, v in d.items() if k != "head"} | {"binary_head": "three"}, "binary_head='three'"),
    (lambda d: d | {"binary_head": "two"}, "unknown Task fields 'binary_head'"),
    (lambda d: d | {"clases": ["a", "b"]}, "did you mean 'classes'"),
    (lambda d: [d], "JSON object"),
]


@_settings(60)
@given(task=_tasks(), bad=st.sampled_from(_BAD_FIELDS))
def test_from_dict_refuses_damaged_dicts(task: Task, bad: tuple[Callable[[dict[str, Any]], Any], str]) -> None:
    """A damaged or hand-edited labelwise.json is refused with a LabelwiseError saying what is wrong."""
    damage, fragment = bad
    data = damage(task.to_dict())
    with pytest.raises(LabelwiseError, match=fragment):
        Task.from_dict(data)


# ---------------------------------------------------------------------------------------------
# Properties: unseen and malformed labels raise LabelwiseErrors that name the rows
# ---------------------------------------------------------------------------------------------
@st.composite
def _with_unseen(draw: st.DrawFn) -> tuple[list[Any], list[Any], list[int | None], list[list[int]]]:
    """Classes, labels the Task never saw, and per row: which unseen label it holds (or None) and which classes."""
    atoms = draw(st.sampled_from([_INTS, _WORD, st.text(_ANY_CHAR, min_size=1, max_size=6)]))
    labels = draw(st.lists(atoms.filter(lambda v: not _is_blank(v)), min_size=4, max_size=10, unique=True))
    num_classes = draw(st.integers(3, len(labels) - 1))
    classes, unseen = labels[:num_classes], labels[num_classes:]
    rows = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.integers(0, len(unseen) - 1)),
                st.lists(st.integers(0, num_classes - 1), min_size=1, max_size=2),
            ),
            min_size=1,
            max_size=15,
        )
    )
    if all(new is None for new, _ in rows):
        rows[draw(st.integers(0, len(rows) - 1))] = (0, rows[0][1])
    return classes, unseen, [new for new, _ in rows], [known for _, known in rows]


@_settings(150)
@given(case=_with_unseen(), multilabel=st.booleans())
def test_unseen_labels_are_named_with_their_rows(
    case: tuple[list[Any], list[Any], list[int | None], list[list[int]]], multilabel: bool
) -> None:
    """Every unseen label and every row holding one is named (up to five of each), whatever else the rows hold."""
    classes, unseen, new, known = case
    # kind="multiclass": classes may hold separators (";", ","), which are labels here, not a multilabel hint.
    task = infer_task([[c] for c in classes] + [[]]) if multilabel else infer_task(classes, kind="multiclass")
    rows: list[Any] = []
    for fresh, indices in zip(new, known, strict=True):
        labels = [classes[i] for i in indices] + ([] if fresh is None else [unseen[fresh]])
        rows.append(labels if multilabel else labels[-1])
    with pytest.raises(LabelError) as raised:
        task.encode(rows)
    named = list(dict.fromkeys(unseen[i] for i in new if i is not None))
    bad_rows = [row for row, i in enumerate(new) if i is not None]
    message = str(raised.value)
    assert f"never trained on: {format_examples(named)} in {format_rows(bad_rows)}." in message
    assert f"Expected one of the {task.num_classes} classes" in message


_FAULTS = ["none", "nan", "pd.NA", "empty", "blank", "float", "bytes", "date", "dict", "list-in-singles", "int"]
_COLLECTION_FAULTS = ["nested", "none-inside", "nan-inside", "empty-inside", "dict-inside"]


def _fault_value(fault: str) -> Any:
    return {
        "none": None,
        "nan": float("nan"),
        "pd.NA": pd.NA,
        "empty": "",
        "blank": "\u00a0 \t",
        "float": 2.5,
        "bytes": b"cat",
        "date": datetime.date(2024, 1, 1),
        "dict": {"cat": 1},
        "list-in-singles": ["cat", "dog"],
        "int": 7,
        "nested": ["cat", ["dog"]],
        "none-inside": ["cat", None],
        "nan-inside": [float("nan")],
        "empty-inside": ["cat", " "],
        "dict-inside": ["cat", {"dog": 1}],
    }[fault]


@_settings(200)
@given(
    words=st.lists(_WORD, min_size=3, max_size=5, unique=True),
    data=st.data(),
    collections=st.booleans(),
)
def test_malformed_labels_raise_labelwise_errors_naming_rows(
    words: list[str], data: st.DataObject, collections: bool
) -> None:
    """Missing, empty, non-integer, unhashable, nested or foreign-typed labels: a LabelwiseError naming the rows.

    Both at inference and when encoding for a Task trained on the clean labels (multilabel for collections).
    """
    n = data.draw(st.integers(3, 15), label="rows")
    clean: list[Any] = [[w] if collections else w for w in (words * n)[:n]]
    if collections:
        clean[0] = [words[0], words[1]]  # some row holds 2+ labels: multilabel
    task = infer_task(clean)
    fault = data.draw(st.sampled_from(_COLLECTION_FAULTS if collections else _FAULTS), label="fault")
    mask = data.draw(st.lists(st.booleans(), min_size=n - 1, max_size=n - 1), label="bad rows")
    bad_rows = [i + 1 for i, bad in enumerate(mask) if bad] or [n - 1]  # row 0 stays clean: it is multilabel
    labels = [_fault_value(fault) if i in bad_rows else v for i, v in enumerate(clean)]
    spelled = data.draw(st.sampled_from([labels, pd.Series(labels, dtype=object)]), label="spelled")
    named = re.compile(_rows_named(bad_rows))
    for call in (infer_task, task.encode):
        # A label of another type is, to a trained Task, a label it has not seen.
        expected = "never trained on" if call is task.encode and fault in ("int", "float", "bytes", "date") else None
        with pytest.raises(LabelwiseError, match=expected) as raised:
            call(spelled)
        assert named.search(str(raised.value)), (fault, str(raised.value))
        assert "\n" not in str(raised.value)


_NOT_LABELS = [
    pytest.param(None, id="none"),
    pytest.param(3, id="int"),
    pytest.param("cat dog", id="str"),
    pytest.param(b"cat", id="bytes"),
    pytest.param(np.array("cat"), id="0d-array"),
    pytest.param(torch.tensor(1), id="0d-tensor"),
    pytest.param(np.zeros((2, 2, 2)), id="3d-array"),
    pytest.param(torch.zeros(2, 2, 2), id="3d-tensor"),
]


@pytest.mark.parametrize("kind", [*TaskKind, None], ids=str)
@pytest.mark.parametrize("labels", _NOT_LABELS)
def test_input_that_is_not_labels_is_refused(labels: Any, kind: TaskKind | None) -> None:
    """Scalars, 0-d and 3-d arrays: a one-line LabelwiseError saying what a label input must be."""
    task = Task(kind=kind or TaskKind.MULTICLASS, classes=("a", "b") if kind is TaskKind.BINARY else ("a", "b", "c"))
    for call in (lambda: infer_task(labels, kind=kind), lambda: task.encode(labels)):
        with pytest.raises(LabelError, match=r"must be a sequence with one entry per item.*Pass a list") as raised:
            call()
        assert "\n" not in str(raised.value)


@pytest.mark.parametrize("sep", ["", 0, b";", ["a"]], ids=repr)
@pytest.mark.parametrize("labels", [["a b", "c"], [["a"], ["b", "c"]]], ids=["strings", "lists"])
def test_bad_label_separators_are_config_errors(sep: Any, labels: list[Any]) -> None:
    with pytest.raises(ConfigError, match="label_sep=.*non-empty string"):
        infer_task(labels, label_sep=sep)
    with pytest.raises(ConfigError, match="label_sep=.*non-empty string"):
        Task(kind=TaskKind.MULTILABEL, classes=("a", "b"), label_sep=sep)


# Values of every shape a DataFrame cell or a user's Python can hold, nested.
_JUNK_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(st.sampled_from(list("ab ;,\t🐱")), max_size=4),
    st.binary(max_size=2),
    st.sampled_from([pd.NA, np.int64(2), np.float64(1.0), np.bool_(True), np.str_("a"), datetime.date(2020, 1, 1)]),
)
_JUNK = st.recursive(
    _JUNK_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(st.one_of(st.booleans(), st.integers(0, 3), st.text("ab", max_size=2)), max_size=3),
        st.dictionaries(st.text("ab", max_size=1), inner, max_size=2),
    ),
    max_leaves=12,
)


@_settings(250)
@given(
    labels=st.one_of(
        st.lists(_JUNK, max_size=12),
        # Nearer to real columns, so that inference succeeds often enough to check encode on its result too.
        st.lists(st.one_of(st.integers(0, 3), st.none()), max_size=12),
        st.lists(st.one_of(st.text("ab ;,", max_size=3), st.none()), max_size=12),
        st.lists(st.one_of(st.lists(st.text("abc", min_size=1, max_size=2), max_size=3), st.none()), max_size=12),
    ),
    kind=st.sampled_from([None, "binary", "multiclass", "multilabel"]),
    sep=st.sampled_from([None, " ", ";"]),
    as_array=st.booleans(),
)
def test_junk_never_escapes_as_a_builtin_error(
    labels: list[Any], kind: str | None, sep: str | None, as_array: bool
) -> None:
    """Whatever the rows hold: a Task that encodes the very labels it came from, or a LabelwiseError.

    Never a bare TypeError, KeyError, IndexError, AttributeError or ValueError from numpy/pandas/torch.
    """
    spelled: Any = labels
    if as_array:  # element by element: numpy would broadcast equal-length rows into a 2-D array
        spelled = np.empty(len(labels), dtype=object)
        for i, row in enumerate(labels):
            spelled[i] = row
    try:
        task = infer_task(spelled, kind=kind, label_sep=sep)
    except LabelwiseError as err:
        event(f"refused: {type(err).__name__}")
        assert "\n" not in str(err)
        return
    event(str(task.kind))
    assert kind is None or task.kind is TaskKind(kind)
    targets = task.encode(spelled)  # what inference accepted, encoding accepts
    assert len(targets) == len(labels) and targets.dtype == task.target_dtype
    _assert_json_round_trip(task)
    for other in _fixed_tasks():
        try:
            other.encode(spelled)
        except LabelwiseError:
            pass


def _fixed_tasks() -> list[Task]:
    return [
        Task(kind=TaskKind.BINARY, classes=(False, True)),
        Task(kind=TaskKind.MULTICLASS, classes=(0, 1, 2)),
        Task(kind=TaskKind.MULTILABEL, classes=("a", "b", "🐱")),
    ]


@_settings(150)
@given(
    task=_tasks(),
    values=st.lists(st.one_of(st.integers(-3, 9), st.floats(-2, 9), st.booleans()), max_size=8),
    ndim=st.integers(0, 3),
    as_numpy=st.booleans(),
)
def test_decode_accepts_its_own_encoding_and_refuses_the_rest(
    task: Task, values: list[Any], ndim: int, as_numpy: bool
) -> None:
    """decode takes decisions (indices, -1 = abstained; 0/1 per label), else a ConfigError naming the rows."""
    decisions = torch.tensor(values) if values else torch.zeros(0)
    if ndim == 2 and values:
        decisions = decisions.reshape(len(values), 1).expand(len(values), task.num_classes)
    elif ndim != 1:
        decisions = decisions.reshape([1] * ndim) if decisions.numel() == 1 else decisions.reshape(-1, 1, 1)
    try:
        decoded = task.decode(decisions.numpy() if as_numpy else decisions)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert len(decoded) == len(decisions)
    if task.kind is TaskKind.MULTILABEL:
        assert all(set(row) <= set(task.classes) for row in decoded)
    else:
        assert all(v is None or v in task.classes for v in decoded)
