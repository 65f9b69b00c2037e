"""What ``labelwise inspect`` finds in labelled data before any training: `inspect_data`.

The report is a JSON-ready dict (``labelwise inspect --json`` prints it as is; `labelwise.report.format_inspect`
turns it into text). It describes the data as `labelwise.fit` will see it: the same reader (`load_source`), the same
Task inference and the same train/validation split (`split_source`, same seed), so "3 validation items repeat a
training item" is about the split training will use, not about some other split.

Duplicates are exact: a table's rows with identical feature values (targets, ids and ``is_valid`` left out), or
image files with identical bytes. Near-duplicates (a resized or re-encoded copy) are not found.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelwise.data._inspection_warnings import EXAMPLES, MIN_CLASS_ITEMS, report_warnings
from labelwise.data._text_stats import column_kinds_section, text_section
from labelwise.data.column_kinds import parse_column_kinds, parse_text_cols
from labelwise.data.images import ImageSpec, _decode, _reason, _run_chunks
from labelwise.data.sources import Source, load_source, source_from_frame
from labelwise.data.splits import Split, split_source
from labelwise.decide.config import MIN_COUNT
from labelwise.errors import DataError, DataWarning
from labelwise.task import Task, TaskKind, infer_task

__all__ = ["MIN_CLASS_ITEMS", "inspect_data"]

# Decoding at a small size still reads every byte (a truncated file fails), and JPEG drafts keep it fast.
_PROBE = ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))

Ids = list[int] | list[str]


def inspect_data(
    data: str | os.PathLike[str] | pd.DataFrame,
    *,
    target: str | Sequence[str] | None = None,
    image_col: str | None = None,
    column_kinds: Mapping[str, str] | Sequence[str] | None = None,
    text_cols: Sequence[str] | None = None,
    task: str = "auto",
    label_sep: str | None = None,
    positive: Any = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Describe labelled data the way `labelwise.fit` will see it, and list what looks wrong.

    Args:
        data: a CSV/Parquet path, an image folder tree, or a DataFrame (read as `labelwise.fit` reads it).
        target: the label column, or several 0/1 columns (multilabel); by default a column named ``label``,
            ``labels``, ``target``, ``class`` or ``y``.
        image_col: column of image paths for image tables (by default detected).
        column_kinds: feature column -> kind, as `labelwise.fit`'s ``column_kinds``.
        text_cols: the only columns to read as text, as `labelwise.fit`'s ``text_cols``.
        task: ``auto`` or ``binary`` / ``multiclass`` / ``multilabel``, as `labelwise.fit`'s ``task``.
        label_sep: separator of multilabel label strings (default: detected).
        positive: the positive class of a binary task, as `labelwise.fit`'s ``positive`` (default: inferred).
        seed: the seed `labelwise.fit` would split with (``TrainConfig.seed``, ``--seed``).

    Returns:
        a JSON-ready dict: ``data``, ``source``, ``rows``, ``task``, ``why``, ``classes`` (items per class;
        positives per label for multilabel), ``imbalance_ratio``, ``label_cardinality`` and ``empty_label_rate``
        (multilabel, else None), ``split`` (``how``, ``train``, ``valid``, ``test``, ``valid_classes``,
        ``train_only`` and ``valid_only``: ``{count, examples}`` of the classes with rows in one part only; all None
        when training could not split the data), ``rare_classes``, ``duplicates``, ``conflicting_labels``, ``leakage``,
        ``unreadable_images`` (images, else None), ``columns`` (tables, else None), ``column_kinds`` (each input
        column's ``{"kind", "why"}`` as training decides them, on its training rows; None for an image folder),
        ``text`` (per text column: lengths, vocabulary, near-duplicates, texts shared by training and validation;
        `labelwise.data._text_stats.text_section`) and ``warnings`` (one line each).

    Raises:
        DataError: data `load_source` cannot read.
        LabelError: labels `infer_task` refuses (a single class, missing labels, ...).
        ConfigError: a ``positive`` that is not a class, or given for labels that are not binary.

    Example:
        >>> frame = pd.DataFrame({"x": [1, 2, 3, 1, 5, 6] * 2, "k": 0, "y": list("abbaab") * 2})
        >>> report = inspect_data(frame)
        >>> report["task"], report["classes"], report["duplicates"]["items"], report["columns"]["constant"]
        ('binary', {'a': 6, 'b': 6}, 7, ['k'])
    """
    kinds = parse_column_kinds(column_kinds)
    text_cols = parse_text_cols(text_cols, kinds)
    source = _read(data, target=target, image_col=image_col)
    the_task = infer_task(source.labels, kind=task, label_sep=label_sep, positive=positive)
    name = "DataFrame" if isinstance(data, pd.DataFrame) else str(data)
    return _report(source, the_task, name=name, seed=seed, kinds=kinds, text_cols=text_cols)


def _report(
    source: Source,
    the_task: Task,
    *,
    name: str,
    seed: int,
    kinds: Mapping[str, str],
    text_cols: Sequence[str] | None = None,
) -> dict[str, Any]:
    """`inspect_data`'s report on ``source`` (called ``name`` in it), its labels read as ``the_task``."""
    values = the_task.encode_array(source.labels)
    split, notes = _split(source, values, the_task, seed=seed)
    items = _image_items(source) if source.kind == "images" else _table_items(source)
    ids: Ids = source.ids if source.kind == "images" else list(range(source.num_items))
    label_keys = _label_keys(values, the_task)
    # fit drops unreadable images after splitting (with --skip-bad-images): count what validation keeps.
    kept_valid = split.valid[items.readable[split.valid]] if split is not None else None
    report: dict[str, Any] = {
        "data": name,
        "source": source.kind,
        "rows": source.num_items,
        "task": str(the_task.kind),
        "why": the_task.reason,
        **_class_section(values, the_task),
        "split": _split_section(split, values, the_task, kept_valid=kept_valid),
        "duplicates": _duplicates(items, ids),
        "conflicting_labels": _conflicts(items.keys, label_keys, ids, labels=_label_names(values, the_task)),
        "leakage": _leakage(items.keys, split, source, ids),
        "unreadable_images": items.unreadable if source.kind == "images" else None,
        "columns": items.columns,
    }
    report["column_kinds"], kind_notes, texts = column_kinds_section(source, split, kinds, text_cols)
    report["text"] = text_section(source.frame, texts, split) if texts else None
    report["rare_classes"] = _rare(report, the_task, num_valid=None if kept_valid is None else len(kept_valid))
    report["warnings"] = report_warnings(report, the_task, [*notes, *kind_notes])
    return report


def _read(data: Any, *, target: str | Sequence[str] | None, image_col: str | None) -> Source:
    if isinstance(data, pd.DataFrame):
        return source_from_frame(data, target=target, image_col=image_col, for_training=True)
    if not isinstance(data, (str, os.PathLike)):
        raise DataError(
            f"cannot inspect {type(data).__name__}; expected a path to a CSV/Parquet file or an image folder, or a "
            "pandas DataFrame."
        )
    return load_source(Path(data), target=target, image_col=image_col, for_training=True)


def _split(source: Source, targets: Any, task: Task, *, seed: int) -> tuple[Split | None, list[str]]:
    """The split `labelwise.fit` makes, and its `DataWarning` texts; None and why when fit could not split."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            split = split_source(source, targets, task, seed=seed)
        except DataError as err:
            split, caught[:] = None, []
            notes = [f"`labelwise train` would stop here: {err}"]
    for warning in caught:
        if not issubclass(warning.category, DataWarning):  # not ours to report: pass it on unchanged
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if split is None:
        return None, notes
    return split, [f"split: {w.message}" for w in caught if issubclass(w.category, DataWarning)]


# -- classes ---------------------------------------------------------------------------------------
def _counts(values: np.ndarray, task: Task) -> np.ndarray:
    """Items per class ``(C,)`` (positives per label for multilabel) of encoded targets ``values``."""
    if task.kind is TaskKind.MULTILABEL:
        return np.asarray(values.sum(axis=0), dtype=np.int64)
    return np.bincount(values.astype(np.int64), minlength=task.num_classes)


def _class_names(task: Task) -> list[str]:
    return [str(c) for c in task.classes]


def _class_section(values: np.ndarray, task: Task) -> dict[str, Any]:
    counts = _counts(values, task)
    section: dict[str, Any] = {
        "classes": dict(zip(_class_names(task), counts.tolist(), strict=True)),
        "imbalance_ratio": round(float(counts.max() / max(int(counts.min()), 1)), 2),
        "label_cardinality": None,
        "empty_label_rate": None,
    }
    if task.kind is TaskKind.MULTILABEL:
        per_item = values.sum(axis=1)
        section["label_cardinality"] = round(float(per_item.mean()), 3)
        section["empty_label_rate"] = round(float((per_item == 0).mean()), 4)
    return section


def _split_section(
    split: Split | None, values: np.ndarray, task: Task, *, kept_valid: np.ndarray | None
) -> dict[str, Any]:
    if split is None or kept_valid is None:
        return {
            "how": None, "train": None, "valid": None, "test": None, "valid_classes": None,
            "train_only": None, "valid_only": None,
        }  # fmt: skip
    return {
        "how": split.how,
        "train": len(split.train),
        "valid": len(split.valid),
        "test": len(values) - len(split.train) - len(split.valid),
        "valid_classes": dict(zip(_class_names(task), _counts(values[kept_valid], task).tolist(), strict=True)),
        **_coverage(_counts(values[split.train], task), _counts(values[kept_valid], task), task),
    }


def _coverage(in_train: np.ndarray, in_valid: np.ndarray, task: Task) -> dict[str, Any]:
    """Classes only in the training rows (no validation metric) and only in validation rows (never learned).

    Counts plus the first `EXAMPLES` names, not every name: at 10^5 classes the lists could hold most of them.
    """
    names = np.asarray(_class_names(task), dtype=object)
    sections = {}
    for key, mask in (
        ("train_only", (in_train > 0) & (in_valid == 0)),
        ("valid_only", (in_train == 0) & (in_valid > 0)),
    ):
        where = np.flatnonzero(mask)
        sections[key] = {"count": int(where.size), "examples": names[where[:EXAMPLES]].tolist()}
    return sections


def _rare(report: dict[str, Any], task: Task, *, num_valid: int | None) -> dict[str, Any]:
    """Classes too rare to validate (< `MIN_CLASS_ITEMS` items) or to tune a threshold for (< `MIN_COUNT`)."""
    counts: dict[str, int] = report["classes"]
    in_valid: dict[str, int] | None = report["split"]["valid_classes"]
    to_threshold: dict[str, int] | None = None
    # Multiclass decides by argmax: no per-class threshold is tuned, so none can lack the items to tune it.
    if in_valid is not None and num_valid is not None and task.kind is not TaskKind.MULTICLASS:
        # The rule of labelwise.decide.thresholds: fewer than MIN_COUNT validation positives, or negatives.
        negatives_count = task.kind is TaskKind.MULTILABEL
        to_threshold = {
            name: n for name, n in in_valid.items() if n < MIN_COUNT or (negatives_count and num_valid - n < MIN_COUNT)
        }
    return {
        "min_items": MIN_CLASS_ITEMS,
        "to_validate": {name: n for name, n in counts.items() if n < MIN_CLASS_ITEMS},
        "min_valid_items": MIN_COUNT,
        "to_threshold": to_threshold,
    }


def _label_keys(values: np.ndarray, task: Task) -> np.ndarray:
    """``(N,)`` int64: equal keys = identical labels (the class index, or the label set's row in a table of sets)."""
    if task.kind is not TaskKind.MULTILABEL:
        return values.astype(np.int64)
    packed = np.packbits(values.astype(bool), axis=1)
    return np.asarray(pd.factorize(pd.Series([row.tobytes() for row in packed], dtype=object))[0], dtype=np.int64)


def _label_names(values: np.ndarray, task: Task) -> Any:
    """A function of a row index giving that row's label(s) as text, for examples in the report."""
    names = _class_names(task)
    if task.kind is TaskKind.MULTILABEL:
        return lambda row: [names[i] for i in np.flatnonzero(values[row])]
    return lambda row: names[int(values[row])]


# -- items: what "identical" means -----------------------------------------------------------------
@dataclass(frozen=True)
class _Items:
    """Equal ``keys`` mark identical items; unreadable images get keys of their own, so they match nothing."""

    keys: np.ndarray
    readable: np.ndarray
    what: str
    unreadable: list[dict[str, str]]
    columns: dict[str, Any] | None


def _table_items(source: Source) -> _Items:
    features, hashed = _hashed_rows(source.frame[source.feature_columns])
    keys = pd.factorize(hashed)[0].astype(np.int64)
    shared = np.bincount(keys)[keys] > 1
    if shared.any():  # rows whose 64-bit hashes agree: confirm by comparing their values, so duplicates are exact
        exact = features[shared].groupby(list(features.columns), dropna=False, sort=False).ngroup().to_numpy()
        keys[shared] = int(keys.max()) + 1 + exact
    missing = features.isna().all()
    distinct = features.nunique(dropna=False)
    columns = {
        "features": len(source.feature_columns),
        "all_missing": [str(c) for c in features.columns if missing[c]],
        "constant": [str(c) for c in features.columns if distinct[c] == 1 and not missing[c]],
    }
    readable = np.ones(len(keys), dtype=bool)
    return _Items(keys, readable, "identical feature values", [], columns)


def _hashed_rows(features: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        return features, pd.util.hash_pandas_object(features, index=False).to_numpy()
    except TypeError:  # cells pandas cannot hash (lists or dicts read from Parquet): compare their text instead
        text = features.astype(str)
        return text, pd.util.hash_pandas_object(text, index=False).to_numpy()


def _image_items(source: Source) -> _Items:
    paths = source.image_paths
    digests: list[bytes | None] = [None] * len(paths)
    reasons: list[str | None] = [None] * len(paths)

    def probe(chunk: range) -> None:
        for i in chunk:
            digests[i], reasons[i] = _probe_image(paths[i])

    _run_chunks(probe, len(paths), num_threads=None)
    readable = np.array([reason is None for reason in reasons], dtype=bool)
    keys = np.empty(len(paths), dtype=np.int64)
    keys[readable] = pd.factorize(pd.Series([d for d in digests if d is not None], dtype=object))[0]
    keys[~readable] = int(readable.sum()) + np.arange(int((~readable).sum()))
    unreadable = [{"path": source.ids[i], "reason": str(reasons[i])} for i in np.flatnonzero(~readable)]
    return _Items(keys, readable, "identical file bytes", unreadable, None)


def _probe_image(path: str) -> tuple[bytes | None, str | None]:
    """(digest of the file's bytes, None), or (None, why it cannot be read)."""
    try:
        digest = hashlib.blake2b(Path(path).read_bytes(), digest_size=16).digest()
        _decode(path, _PROBE)
    except Exception as err:  # noqa: BLE001 - PIL raises many types on corrupt files; each is named in the report
        return None, _reason(err, path)
    return digest, None


# -- findings over the keys ------------------------------------------------------------------------
def _groups_in_order(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The distinct keys of ``rows``, ordered by the first row holding each."""
    unique, first = np.unique(keys[rows], return_index=True)
    return np.asarray(unique[np.argsort(first, kind="stable")])


def _members(keys: np.ndarray, key: int, ids: Ids) -> list[Any]:
    return [ids[i] for i in np.flatnonzero(keys == key)[:EXAMPLES]]


def _duplicates(items: _Items, ids: Ids) -> dict[str, Any]:
    repeated = np.flatnonzero(np.bincount(items.keys)[items.keys] > 1)
    groups = _groups_in_order(items.keys, repeated)
    return {
        "what": items.what,
        "items": len(repeated) - len(groups),  # copies beyond the first of each group
        "groups": len(groups),
        "examples": [_members(items.keys, g, ids) for g in groups[:EXAMPLES]],
    }


def _conflicts(keys: np.ndarray, label_keys: np.ndarray, ids: Ids, *, labels: Any) -> dict[str, Any]:
    # One int64 per (item key, label key) pair (both < N, so no overflow); distinct pairs per key = labelings.
    pairs = np.unique(keys * (int(label_keys.max()) + 1) + label_keys)
    labelings = np.bincount(pairs // (int(label_keys.max()) + 1), minlength=int(keys.max()) + 1)
    rows = np.flatnonzero(labelings[keys] > 1)
    groups = _groups_in_order(keys, rows)
    examples = []
    for group in groups[:EXAMPLES]:
        members = np.flatnonzero(keys == group)[:EXAMPLES]
        examples.append({"ids": [ids[i] for i in members], "labels": [labels(i) for i in members]})
    return {"groups": len(groups), "items": len(rows), "examples": examples}


def _leakage(keys: np.ndarray, split: Split | None, source: Source, ids: Ids) -> dict[str, Any] | None:
    if split is None:
        return None
    # The first training row holding each key (-1: none); reversed assignment leaves the smallest row in place.
    first_train = np.full(int(keys.max()) + 1, -1, dtype=np.int64)
    first_train[keys[split.train[::-1]]] = split.train[::-1]
    test = np.flatnonzero(source.is_test) if source.is_test is not None else None
    return {
        "valid": _repeats(keys, split.valid, first_train, ids),
        "test": _repeats(keys, test, first_train, ids) if test is not None else None,
    }


def _repeats(keys: np.ndarray, rows: np.ndarray, first_train: np.ndarray, ids: Ids) -> dict[str, Any]:
    """How many of ``rows`` repeat a training item exactly, with (row, training row) examples."""
    match = first_train[keys[rows]]
    leaked = np.flatnonzero(match >= 0)
    return {
        "items": len(leaked),
        "of": len(rows),
        "examples": [[ids[rows[i]], ids[match[i]]] for i in leaked[:EXAMPLES]],
    }
