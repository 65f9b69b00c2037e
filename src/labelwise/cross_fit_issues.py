"""Likely label errors in labelled data before any run exists (``labelwise inspect DATA --label-issues``).

`cross_fit_label_issues` cross-fits labelwise's default model in memory (`labelwise.fit` with ``folds``, no run
folder) and ranks its out-of-fold predictions with `labelwise.label_issues.find_label_issues`. It refuses, before
training, data it cannot cross-fit well: too few rows, a class with fewer items than folds, a source so large that
training would stream it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from labelwise.data.sources import Source
from labelwise.data.stream_prep import should_stream
from labelwise.errors import ConfigError, DataError
from labelwise.fitting import fit
from labelwise.label_issues import LabelIssue
from labelwise.pipeline.prepare import read_source
from labelwise.task import Task, TaskKind, infer_task

__all__ = ["MIN_ROWS", "cross_fit_label_issues"]

# Below this, each member trains on a dozen rows: its out-of-fold probabilities say more about which rows shared a
# fold than about any label.
MIN_ROWS = 20
_DEFAULT_FOLDS = 5


def cross_fit_label_issues(
    data: str | os.PathLike[str] | Any,
    *,
    target: str | Sequence[str] | None = None,
    folds: int = _DEFAULT_FOLDS,
    seed: int = 0,
    image_col: str | None = None,
    column_kinds: Mapping[str, str] | Sequence[str] | None = None,
    text_cols: Sequence[str] | None = None,
    task: str = "auto",
    label_sep: str | None = None,
    positive: Any = None,
) -> list[LabelIssue]:
    """Cross-fit the default model on ``data`` in memory and rank its likely label errors, most likely first.

    Nothing is written: the members train in a temporary folder that is removed afterwards. An ``is_valid`` column
    is set aside: every row is predicted out of fold and checked.

    Args:
        data: a CSV/Parquet path, an image folder tree, a DataFrame or a `Source` (read as `labelwise.fit` reads it).
        target, image_col, column_kinds, text_cols, task, label_sep, positive: as `labelwise.fit` takes them.
        folds: models to cross-fit (at least 2); each predicts the rows it did not train on.
        seed: the seed of the folds and of the training (``--seed``).

    Returns:
        the `LabelIssue` dicts `labelwise.label_issues.find_label_issues` finds, ``row`` counting the rows of
        ``data`` from 0.

    Raises:
        ConfigError: ``folds`` below 2; a source large enough that training would stream it.
        DataError: fewer than `MIN_ROWS` rows, or a class with fewer than ``folds`` items.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(
            f"--folds {folds!r} with --label-issues; finding label errors cross-fits at least 2 models, each "
            f"predicting the rows it did not train on. Pass --folds {_DEFAULT_FOLDS} (the default) or another K >= 2."
        )
    target_arg = target if target is None or isinstance(target, str) else [str(name) for name in target]
    if should_stream(data, stream="auto", target=target_arg, image_col=image_col):
        raise ConfigError(
            f"--label-issues on {str(data)!r}: it is larger than labelwise reads into memory (training would stream "
            f"it), and finding label errors trains {folds} models on every row in memory. Inspect a sample of the "
            "rows instead (e.g. `pandas.read_parquet(path).sample(100_000).to_parquet('sample.parquet')`), or "
            "drop --label-issues."
        )
    source = read_source(data, target=target_arg, image_col=image_col)
    the_task = infer_task(source.labels, kind=task, label_sep=label_sep, positive=positive)
    _check_can_cross_fit(source, the_task, folds=folds)
    options: dict[str, Any] = {"task": task, "label_sep": label_sep, "positive": positive}
    if column_kinds is not None:
        options["column_kinds"] = column_kinds
    if text_cols is not None:
        options["text_cols"] = tuple(text_cols)
    # Every row's label is checked, validation rows too: an is_valid column splits a run, and cross-fitting refuses
    # it (it predicts every row out of fold instead), so it is set aside here rather than stopping the inspection.
    source = replace(source, is_valid=None)
    clf = fit(source, folds=folds, seed=seed, stream="off", progress=False, **options)
    return clf.label_issues()


def _check_can_cross_fit(source: Source, task: Task, *, folds: int) -> None:
    """Refuse too few rows, or single-label classes with fewer items than folds (all of them named at once)."""
    if source.num_items < MIN_ROWS:
        raise DataError(
            f"--label-issues on {source.num_items} rows: finding label errors cross-fits {folds} models, each on the "
            f"rows outside its fold, and needs at least {MIN_ROWS} rows for their predictions to say anything about "
            "a label. Add rows, or drop --label-issues."
        )
    if task.kind is TaskKind.MULTILABEL:
        return  # a rare tag may miss a fold; its members then train without it (`assign_folds`)
    counts = np.bincount(task.encode(source.labels).numpy().astype(np.int64), minlength=task.num_classes)
    few = [(task.classes[j], int(n)) for j, n in enumerate(counts) if n < folds]
    if few:
        more = f" and {len(few) - 5} more" if len(few) > 5 else ""
        named = ", ".join(f"{cls!r} ({n})" for cls, n in few[:5]) + more
        fewest = min(n for _, n in few)
        fix = f"Pass --folds {fewest} (K >= 2)" if fewest >= 2 else "Drop or relabel the classes with one item"
        raise DataError(
            f"--label-issues with --folds {folds} needs at least {folds} items of every class, so that every fold "
            f"holds some of each to predict out of fold; {len(few)} class(es) have fewer: {named}. {fix}, or add "
            "items of those classes."
        )
