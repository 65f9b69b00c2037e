"""The ``predictions.csv`` table, written alike by every backend: the network in torch, an exported ONNX file.

Torch-free (tensors and numpy arrays are both read through `labelwise._arrays.as_numpy`), so that
`predict --backend onnx` writes it without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from labelwise._arrays import as_numpy
from labelwise.data.sources import Source
from labelwise.ranking import AUTO_TOP_K_ABOVE, Ranked, ranked_columns
from labelwise.task import Task, join_labels

__all__ = ["DecisionsLike", "prediction_records", "predictions_table"]


class DecisionsLike(Protocol):
    """What `predictions_table` reads of a policy's output: `labelwise.decide.policy.Decisions`, in torch or numpy."""

    @property
    def probs(self) -> Any: ...
    @property
    def decisions(self) -> Any: ...
    @property
    def abstained(self) -> Any: ...
    @property
    def unknown_score(self) -> Any: ...
    @property
    def sets(self) -> Any: ...


def predictions_table(
    out: DecisionsLike,
    *,
    source: Source,
    kept: np.ndarray,
    task: Task,
    ranked: Ranked | None = None,
    top_columns: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The ``predictions.csv`` table of a policy's ``out`` for the ``kept`` rows of ``source``.

    ``ranked`` (top-k outputs) adds ``top1..topK`` and ``p_top1..p_topK`` after the ``p:<class>`` columns, which
    give way to them above `AUTO_TOP_K_ABOVE` classes (and are absent when ``out`` holds no probabilities);
    ``top_columns`` are those columns already made (`labelwise.ranking.top_k_columns`), from numpy.
    """
    if ranked is not None:
        top_columns = ranked_columns(ranked, task)
    ids = [i for i, keep in zip(source.ids, kept, strict=True) if keep]
    frame = pd.DataFrame({"id": ids})
    if out.probs is not None and (top_columns is None or task.num_classes <= AUTO_TOP_K_ABOVE):
        probs = as_numpy(out.probs)
        # One concat, not C column inserts: pandas slows down (and warns) inserting hundreds of columns.
        columns = pd.DataFrame(probs, columns=[f"p:{cls}" for cls in task.classes])
        frame = pd.concat([frame, columns], axis=1)
    if top_columns is not None:
        frame = frame.assign(**top_columns)
    frame["prediction"] = join_labels(task.decode(out.decisions), sep=task.label_sep)
    frame["abstained"] = as_numpy(out.abstained)
    if out.unknown_score is not None:
        frame["unknown_score"] = as_numpy(out.unknown_score)
    if out.sets is not None:
        sets = [tuple(task.classes[j] for j in np.flatnonzero(row)) for row in as_numpy(out.sets)]
        frame["set"] = join_labels(sets, sep=task.label_sep)
    return frame


def prediction_records(out: DecisionsLike, *, ids: Sequence[str], task: Task) -> list[dict[str, Any]]:
    """The rows `predictions_table` writes for a dense head's ``out`` (every row kept, no top-k columns), as dicts
    of JSON values: Python floats, bools and strings, None for NaN. ``labelwise serve`` answers these.

    Building the dicts from the arrays costs a few microseconds a row; the table and its ``to_dict`` cost about
    2 ms a call, which a server answering single-row requests pays per batch. `tests/test_serve.py` checks that
    both give the same rows.
    """
    names = [f"p:{cls}" for cls in task.classes]
    columns: list[tuple[str, list[Any]]] = [("prediction", join_labels(task.decode(out.decisions), sep=task.label_sep))]
    columns.append(("abstained", as_numpy(out.abstained).astype(bool).tolist()))
    if out.unknown_score is not None:
        columns.append(("unknown_score", _finite_or_none(as_numpy(out.unknown_score).astype(np.float64).tolist())))
    if out.sets is not None:
        sets = [tuple(task.classes[j] for j in np.flatnonzero(row)) for row in as_numpy(out.sets)]
        columns.append(("set", join_labels(sets, sep=task.label_sep)))
    probs = as_numpy(out.probs)
    rows = probs.tolist() if np.isfinite(probs).all() else [_finite_or_none(row) for row in probs.tolist()]
    records = []
    for i, row_id in enumerate(ids):
        record: dict[str, Any] = {"id": row_id, **dict(zip(names, rows[i], strict=True))}
        for name, values in columns:
            record[name] = values[i]
        records.append(record)
    return records


def _finite_or_none(values: list[float]) -> list[float | None]:
    return [value if math.isfinite(value) else None for value in values]
