"""Hold out a validation set that looks like the training set (stratified by class or label)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from labelwise._arrays import as_numpy
from labelwise.errors import ConfigError, DataError, DataWarning, format_examples
from labelwise.task import Task, TaskKind

if TYPE_CHECKING:
    import torch

    from labelwise.data.sources import Source

__all__ = ["MIN_SPLIT_ROWS", "Split", "assign_folds", "split_source", "split_train_valid"]

MIN_SPLIT_ROWS = 4  # fewer rows leave a validation set of one item, or a training set too small to learn from


@dataclass(frozen=True)
class Split:
    """Row indices into the source: ``train`` and ``valid``; test rows (a folder's ``test/``) are in neither."""

    train: np.ndarray
    valid: np.ndarray
    how: str


def split_source(source: Source, targets: torch.Tensor | np.ndarray, task: Task, *, seed: int) -> Split:
    """The split `labelwise.fit` trains on: the one the data declares, else `split_train_valid` (80/20, seeded).

    `labelwise.fit` and ``labelwise inspect`` both call this, so the report's leakage and validation counts describe
    the split training will use. A folder's ``test/`` rows are left out of both sides.

    Args:
        source: the data as `load_source` read it.
        targets: ``task.encode(source.labels)`` (or `Task.encode_array`'s), one row per item of ``source``.
        task: the Task of the targets.
        seed: seed of the split when the data declares none.

    Raises:
        DataError: every usable row is marked for validation, or (from `split_train_valid`) fewer than 4 rows.

    Warns:
        DataWarning: the split could not be stratified (see `split_train_valid`).

    Example:
        >>> import pandas as pd
        >>> from labelwise.data.sources import source_from_frame
        >>> frame = pd.DataFrame({"x": range(6), "y": list("ababab"), "is_valid": [0, 0, 0, 0, 1, 1]})
        >>> task = Task(kind="binary", classes=("a", "b"))
        >>> split = split_source(source_from_frame(frame), task.encode(frame["y"]), task, seed=0)
        >>> split.train.tolist(), split.valid.tolist(), split.how
        ([0, 1, 2, 3], [4, 5], 'given (is_valid column or valid/ folder)')
    """
    usable = np.flatnonzero(~source.is_test) if source.is_test is not None else np.arange(len(targets))
    if source.is_valid is not None and source.is_valid[usable].any():
        valid = usable[source.is_valid[usable]]
        train = usable[~source.is_valid[usable]]
        if len(train) == 0:
            raise DataError("every row is marked `is_valid`; expected some training rows. Fix the is_valid column.")
        how = "given (is_valid column or valid/ folder)"
        return Split(train, valid, how)
    train_pos, valid_pos = split_train_valid(targets[usable], task, seed=seed)
    return Split(usable[train_pos], usable[valid_pos], f"seeded stratified 80/20 split (seed {seed})")


def _check_enough_rows(num_rows: int) -> int:
    if num_rows < MIN_SPLIT_ROWS:
        raise DataError(
            f"only {num_rows} row(s): too few to hold out a validation set (need at least {MIN_SPLIT_ROWS}). Add rows, "
            "or give the validation rows yourself (an `is_valid` column, or a valid/ folder)."
        )
    return num_rows


def split_train_valid(
    targets: torch.Tensor | np.ndarray, task: Task, *, valid_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into train and validation, keeping each class's (or label's) share in both.

    Single-label tasks use scikit-learn's ``StratifiedShuffleSplit``; multilabel tasks use iterative
    stratification (``MultilabelStratifiedShuffleSplit``), which balances every label at once and copes with rare
    labels. When a single-label split cannot be stratified (a class with one item, or fewer validation or training
    rows than classes) it falls back to a plain seeded random split and warns.

    Args:
        targets: encoded targets, as `Task.encode` returns them: ``(N,)`` class indices (float 0/1 for a one-logit
            binary task) or ``(N, C)`` 0/1 for multilabel; a tensor or a numpy array.
        task: the Task the targets belong to.
        valid_fraction: share of rows held out, in (0, 1); rounded, at least one row on each side.
        seed: seed of the shuffle; the same seed gives the same split.

    Returns:
        ``(train_indices, valid_indices)``: sorted int64 row positions, disjoint, together all N rows.

    Raises:
        DataError: fewer than 4 rows.
        ConfigError: ``valid_fraction`` outside (0, 1), or targets whose shape does not fit the Task.

    Warns:
        DataWarning: the split could not be stratified.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> import torch
        >>> train, valid = split_train_valid(torch.tensor([0.0, 1.0] * 5), task, valid_fraction=0.2)
        >>> len(train), len(valid)
        (8, 2)
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction={valid_fraction!r}; expected a share strictly between 0 and 1, e.g. 0.2.")
    labels = _labels_for_split(targets, task)
    num_rows = _check_enough_rows(len(labels))
    num_valid = min(num_rows - 1, max(1, round(num_rows * valid_fraction)))
    if task.kind is TaskKind.MULTILABEL:
        splitter: MultilabelStratifiedShuffleSplit | StratifiedShuffleSplit = MultilabelStratifiedShuffleSplit(
            n_splits=1, test_size=num_valid, random_state=seed
        )
    else:
        problem = _unstratifiable(labels, task, num_valid=num_valid)
        if problem:
            warnings.warn(
                f"{problem}, so the validation split cannot keep every class's share; using a plain random split "
                f"(seed={seed}). Expected at least 2 items per class; add items of the rare classes, raise "
                "`valid_fraction`, or give the validation rows yourself (`is_valid` column or valid/ folder).",
                DataWarning,
                stacklevel=2,
            )
            return _shuffle_split(num_rows, num_valid=num_valid, seed=seed)
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=num_valid, random_state=seed)
    train, valid = next(splitter.split(np.zeros((num_rows, 1)), labels))
    return np.sort(train).astype(np.int64), np.sort(valid).astype(np.int64)


def _labels_for_split(targets: torch.Tensor | np.ndarray, task: Task) -> np.ndarray:
    """Class indices ``(N,)`` or a 0/1 matrix ``(N, C)`` as int64 numpy."""
    expected = (task.num_classes,) if task.kind is TaskKind.MULTILABEL else ()
    if targets.ndim != 1 + len(expected) or tuple(targets.shape[1:]) != expected:
        want = "(N, C)" if expected else "(N,)"
        raise ConfigError(
            f"targets of shape {tuple(targets.shape)} do not fit this {task.kind} Task with {task.num_classes} "
            f"classes; expected {want}. Pass `task.encode(labels)`."
        )
    values = as_numpy(targets)
    limit = 2 if task.kind is TaskKind.MULTILABEL else task.num_classes
    outside = ~np.isin(values, np.arange(limit))
    if outside.any():
        raise ConfigError(
            f"targets hold values outside 0..{limit - 1} ({format_examples(np.unique(values[outside]).tolist())}) for "
            f"this {task.kind} Task; pass `task.encode(labels)`."
        )
    return values.astype(np.int64)


def _unstratifiable(labels: np.ndarray, task: Task, *, num_valid: int) -> str | None:
    """Why ``StratifiedShuffleSplit`` cannot split these labels, or None if it can."""
    counts = np.bincount(labels, minlength=task.num_classes)
    present = int((counts > 0).sum())
    lonely = [task.classes[i] for i in np.flatnonzero(counts == 1)]
    if lonely:
        return f"class(es) {format_examples(lonely)} have a single item"
    if num_valid < present:
        return f"the validation split holds {num_valid} rows, fewer than the {present} classes"
    if len(labels) - num_valid < present:
        return f"the training split holds {len(labels) - num_valid} rows, fewer than the {present} classes"
    return None


def _shuffle_split(num_rows: int, *, num_valid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(num_rows)
    return np.sort(order[num_valid:]).astype(np.int64), np.sort(order[:num_valid]).astype(np.int64)


def assign_folds(targets: torch.Tensor | np.ndarray, task: Task, *, folds: int, seed: int = 0) -> np.ndarray:
    """A fold in ``0..folds-1`` for each row, every fold holding each class's (or label's) share of the rows.

    Single-label tasks use scikit-learn's ``StratifiedKFold``, multilabel tasks iterative stratification
    (``MultilabelStratifiedKFold``), both shuffled with ``seed``.

    Raises:
        ConfigError: ``folds`` below 2.
        DataError: a class with fewer items than folds (some fold would train without it or hold none of it), or
            fewer rows than `MIN_SPLIT_ROWS`.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> folds = assign_folds(np.array([0.0, 1.0] * 6), task, folds=3)
        >>> np.bincount(folds).tolist(), [int(folds[1::2].tolist().count(f)) for f in range(3)]
        ([4, 4, 4], [2, 2, 2])
    """
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise ConfigError(f"folds={folds!r}; cross-fitting needs at least 2 folds (1 trains one model).")
    labels = _labels_for_split(targets, task)
    _check_enough_rows(len(labels))
    if task.kind is TaskKind.MULTILABEL:
        counts = labels.sum(axis=0)
        splitter: MultilabelStratifiedKFold | StratifiedKFold = MultilabelStratifiedKFold(
            n_splits=folds, shuffle=True, random_state=seed
        )
    else:
        counts = np.bincount(labels, minlength=task.num_classes)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # A rare multilabel tag may miss some folds (its members then train without it); a single-label class may not.
    few = [] if task.kind is TaskKind.MULTILABEL else [(task.classes[i], int(n)) for i, n in enumerate(counts)]
    rarest = min(few, key=lambda item: item[1], default=(None, len(labels)))
    if rarest[1] < folds:
        name = "the data" if rarest[0] is None else f"class {rarest[0]!r}"
        fewer = f"--folds {rarest[1]} or fewer" if rarest[1] >= 2 else "--folds 1 (one model on an 80/20 split)"
        raise DataError(
            f"--folds {folds} needs at least {folds} items of every class, but {name} has {rarest[1]}: every fold "
            f"must hold some of each class to be predicted out of fold. Pass {fewer}, or add items of that class."
        )
    assigned = np.empty(len(labels), dtype=np.int64)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros((len(labels), 1)), labels)):
        assigned[held_out] = fold
    return assigned
