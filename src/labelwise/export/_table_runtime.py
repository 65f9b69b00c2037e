"""Predict a table run from its exported ONNX file with numpy and onnxruntime alone: no torch.

`labelwise.export._load.load_onnx` builds a `TableOnnxClassifier` for a run whose inputs are table columns and
whose policy `NumpyPolicy` can apply; it writes the same ``predictions.csv`` as the torch backend
(`labelwise._predictions.predictions_table`), which `tests/test_export.py` checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelwise._predictions import predictions_table
from labelwise.data._columns import CategoricalColumn, category_keys
from labelwise.data._kind_columns import BooleanColumn
from labelwise.data.sources import Source
from labelwise.data.tables import NumericColumn, TablePreprocessor, bad_values_error
from labelwise.errors import DataError
from labelwise.export._names import MISSING, input_name
from labelwise.export._numpy_policy import NumpyPolicy, top_order
from labelwise.ranking import output_top_k, top_k_columns
from labelwise.task import Task

__all__ = ["TableInputs", "TableOnnxClassifier", "column_feeds", "table_feeds", "table_onnx_classifier"]

_BATCH = 512
_TABLE_KINDS = frozenset({"numeric", "categorical", "boolean", "datetime", "ignored"})


@dataclass(frozen=True)
class TableInputs:
    """What `predict` asks of a run's inputs (`labelwise.inputs.Inputs`), for a run of table columns only."""

    table: TablePreprocessor
    image_col: None = None

    @property
    def row_columns(self) -> tuple[Any, ...]:
        return self.table.specs


@dataclass
class TableOnnxClassifier:
    """An exported table classifier run by onnxruntime, decided in numpy; `load_onnx` builds one.

    ``task``, ``inputs``, ``policy`` and ``info`` mean what they mean on `labelwise.export.OnnxClassifier`.
    """

    task: Task
    inputs: TableInputs
    policy: NumpyPolicy
    session: Any  # onnxruntime.InferenceSession: untyped third-party object
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    stored: dict[str, Any] = field(default_factory=dict, repr=False)  # the run's labelwise.json, weights aside

    def metadata(self) -> dict[str, Any]:
        """The exported run's metadata, as `Classifier.metadata` gives it (task, preprocessing, calibration, ...)."""
        return dict(self.stored)

    def predictions_frame(self, source: Source, *, skip_bad: bool = False, top_k: int | None = None) -> pd.DataFrame:
        """The ``predictions.csv`` table, as `Classifier.predictions_frame` writes it (``top_k`` likewise)."""
        logits = self.calibrated_logits(table_feeds(self.inputs.table, source))
        out = self.policy.with_top_k(top_k, self.task).decide(logits)
        k = output_top_k(top_k, num_classes=self.task.num_classes)
        columns = None
        if k is not None:
            order = top_order(out.probs, k)
            columns = top_k_columns(order, np.take_along_axis(out.probs, order, axis=1), self.task)
        kept = np.ones(len(source.ids), dtype=bool)
        return predictions_table(out, source=source, kept=kept, task=self.task, top_columns=columns)

    def calibrated_logits(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """onnxruntime's calibrated ``logits`` ``(N, head_width)`` float32 for ONNX inputs ``feeds``, in batches."""
        return run_in_batches(self.session, feeds, head_width=self.task.head_width)


def run_in_batches(session: Any, feeds: dict[str, np.ndarray], *, head_width: int) -> np.ndarray:
    """The ``logits`` output ``(N, head_width)`` float32 of an ONNX ``session`` for ``feeds``, `_BATCH` rows a run."""
    rows = len(next(iter(feeds.values()))) if feeds else 0
    parts = [
        session.run(["logits"], {k: v[i : i + _BATCH] for k, v in feeds.items()})[0] for i in range(0, rows, _BATCH)
    ]
    logits = np.concatenate(parts) if parts else np.empty((0, head_width), np.float32)
    return np.ascontiguousarray(logits, dtype=np.float32)


def table_onnx_classifier(session: Any, meta: dict[str, Any], file: Path) -> TableOnnxClassifier | None:
    """The numpy classifier of an exported run, or None when its inputs or policy need the torch backend."""
    preprocessing = meta["preprocessing"]
    columns = preprocessing.get("columns") if preprocessing.get("type") in ("columns", "table") else None
    if not columns or any(column.get("type") not in _TABLE_KINDS for column in columns):
        return None
    task = Task.from_dict(meta["task"])
    policy = NumpyPolicy.from_dict(meta["decision"], task)
    if policy is None:
        return None
    known = {"format_version", "weights", "task", "preprocessing", "model", "calibration", "decision"}
    return TableOnnxClassifier(
        task=task,
        inputs=TableInputs(TablePreprocessor.from_dict({"columns": columns})),
        policy=policy,
        session=session,
        path=file,
        info={k: v for k, v in meta.items() if k not in known},
        stored={k: v for k, v in meta.items() if k not in ("format_version", "weights")},
    )


def table_feeds(preprocessor: TablePreprocessor, source: Source) -> dict[str, np.ndarray]:
    """Raw feature columns as the ONNX inputs: float64 with NaN, or strings with ``""`` for missing."""
    if source.kind != "table":
        raise DataError(
            "this model was trained on a table, but the data given is a folder of images. "
            "Pass a CSV or Parquet file with the training feature columns."
        )
    preprocessor.check_columns(source.frame)
    return column_feeds(preprocessor, source.frame)


def column_feeds(preprocessor: TablePreprocessor, columns: Mapping[Any, Any]) -> dict[str, np.ndarray]:
    """`table_feeds` from the fitted columns of a frame or a mapping of them: a column as a Series, or a numeric one
    as a float64 array with NaN for missing (as `TablePreprocessor.features` takes them)."""
    feeds: dict[str, np.ndarray] = {}
    problems = []
    for spec in preprocessor.specs:
        if isinstance(spec, NumericColumn | BooleanColumn):
            values, problem = spec.values(columns[spec.name])
            problems += [(spec.kind, problem)] if problem else []
            feeds[input_name(spec.name)] = values
        elif isinstance(spec, CategoricalColumn):
            codes, keys = category_keys(columns[spec.name])
            # A real "" cell would read as missing in ONNX; "\0" is a value no category has, so it stays unseen.
            names = np.array([key if key != MISSING else "\0" for key in keys] + [MISSING], dtype=object)
            feeds[input_name(spec.name)] = names[np.where(codes < 0, len(keys), codes)]
    if problems:
        raise bad_values_error(problems)
    return feeds
