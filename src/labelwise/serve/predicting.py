"""One model call for a batch of requests, answering per row exactly what ``labelwise predict`` writes.

`batch_runner` picks the way once per server:

- Straight from arrays: a table run whose inputs are feature columns (numbers, categories, booleans, dates) and an
  image run, on the torch network or an exported ONNX file. The batch's rows become the network's inputs with the
  run's fitted columns (`TablePreprocessor.features`, `column_feeds`), images the pixels checking them decoded; the
  run's policy decides as in ``predict`` (the head's, or `NumpyPolicy` for an ONNX table run, which then never
  imports torch); `prediction_records` writes the rows. No DataFrame, no `Source`, no temporary files.
- Through ``predict``'s own code for the other runs (text columns, rows with an image each, classes ranked in
  chunks, top-k columns, ONNX runs decided in torch): the batch becomes one `Source`, `predictions_frame` writes
  the ``predictions.csv`` table, which is cut back into one list of rows per request.

Either way ``id`` is the row's position in its request (an image's: its position, or its multipart file name).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelwise._predictions import DecisionsLike, prediction_records
from labelwise.ranking import output_top_k
from labelwise.serve.bodies import ImageItem
from labelwise.serve.rows import RowReader, TableRows

__all__ = ["batch_runner", "json_safe"]

_PATH_COLUMN = "path"
Runner = Callable[[Sequence[Any]], list[list[dict[str, Any]]]]
_TableDecide = Callable[[Mapping[Any, Any], int], DecisionsLike]
_PixelsDecide = Callable[[np.ndarray], DecisionsLike]


def batch_runner(clf: Any, reader: RowReader | None) -> Runner:
    """What predicts a batch of jobs for ``clf``: `TableRows` of the ``reader``'s rows, or lists of `ImageItem`
    (``reader`` None: an image run). It runs in the batcher's thread."""
    if reader is None:
        by_pixels = _pixels_decide(clf)
        if by_pixels is None:
            return lambda jobs: _through_predict_images(clf, jobs)
        return lambda jobs: _images(clf, by_pixels, jobs)
    by_columns = _table_decide(clf)
    if by_columns is None:
        return lambda jobs: _through_predict_tables(clf, reader, jobs)
    return lambda jobs: _tables(clf, reader, by_columns, jobs)


def _tables(clf: Any, reader: RowReader, decide: _TableDecide, parts: Sequence[TableRows]) -> list[list[Any]]:
    sizes = [part.num_rows for part in parts]
    out = decide(reader.columns(parts), sum(sizes))
    return _split(prediction_records(out, ids=[str(i) for size in sizes for i in range(size)], task=clf.task), sizes)


def _images(clf: Any, decide: _PixelsDecide, requests: Sequence[Sequence[ImageItem]]) -> list[list[Any]]:
    items = [item for request in requests for item in request]
    out = decide(np.stack([item.pixels for item in items if item.pixels is not None]))  # all: checked on arrival
    records = prediction_records(out, ids=[item.id for item in items], task=clf.task)
    return _split(records, [len(request) for request in requests])


def _dense(clf: Any) -> bool:
    """Whether ``predict`` writes one ``p:<class>`` column per class and no top-k columns for ``clf``."""
    from labelwise.task import HeadType

    return clf.task.head is not HeadType.RANKED and output_top_k(None, num_classes=clf.task.num_classes) is None


def _table_decide(clf: Any) -> _TableDecide | None:
    """The decisions for a batch's columns, the way ``predict`` makes them for ``clf``; None: use ``predict``."""
    from labelwise.export._table_runtime import TableOnnxClassifier, column_feeds

    if not _dense(clf):
        return None
    if isinstance(clf, TableOnnxClassifier):  # numpy and onnxruntime alone: a served ONNX table run loads no torch
        return lambda columns, n: clf.policy.decide(clf.calibrated_logits(column_feeds(clf.inputs.table, columns)))
    from labelwise.classifier import Classifier
    from labelwise.inputs.columns import FeatureGroup

    groups = clf.inputs.groups if isinstance(clf, Classifier) else ()
    if len(groups) != 1 or not isinstance(groups[0], FeatureGroup):
        return None
    return lambda columns, n: _torch_decisions(clf, groups[0].key, clf.inputs.table.features(columns, num_rows=n))


def _pixels_decide(clf: Any) -> _PixelsDecide | None:
    """The decisions for a batch's decoded images ``(N, C, H, W)`` uint8, as ``predict`` makes them; None: use it."""
    from labelwise.classifier import Classifier
    from labelwise.export._runtime import OnnxClassifier
    from labelwise.inputs.columns import ImageColumn

    groups = clf.inputs.groups
    if not _dense(clf) or len(groups) != 1 or not isinstance(groups[0], ImageColumn):
        return None
    if isinstance(clf, OnnxClassifier):
        from labelwise.export._names import PIXELS
        from labelwise.heads.dense import decide_calibrated

        return lambda pixels: decide_calibrated(
            clf.calibrated_logits({PIXELS: pixels}), clf.task, clf.policy, top_k=None
        )[0]
    if isinstance(clf, Classifier):
        return lambda pixels: _torch_decisions(clf, groups[0].key, pixels)
    return None


def _torch_decisions(clf: Any, key: str, values: np.ndarray) -> DecisionsLike:
    """`Classifier.predict_source`'s decisions for the encoded ``values`` of the run's one input group."""
    import torch

    from labelwise.inputs import Encoded, Values

    encoded = Encoded(Values({key: torch.from_numpy(values)}), np.ones(len(values), dtype=bool), [])
    return clf.head.predict(clf.raw_outputs(encoded), clf.fitted).out  # type: ignore[no-any-return]


def _through_predict_tables(clf: Any, reader: RowReader, parts: Sequence[TableRows]) -> list[list[dict[str, Any]]]:
    """Predictions through ``predict``'s `Source` and `predictions_frame`; the images of a run reading rows with
    an image each (decoded by the request's checks) are written to a temporary folder, as `predict` reads files."""
    from labelwise.data.sources import source_from_frame

    ids = [str(i) for part in parts for i in range(part.num_rows)]
    frame, image_col = reader.frame(parts), getattr(clf.inputs, "image_col", None)
    sizes = [part.num_rows for part in parts]
    if image_col is None:
        source = source_from_frame(frame)
        return _split_frame(clf, dataclasses.replace(source, ids=ids), sizes)
    with tempfile.TemporaryDirectory(prefix="labelwise-serve-") as folder:
        frame[image_col] = _write_images(folder, frame[image_col].tolist())
        source = source_from_frame(frame, image_col=image_col, root=folder)
        return _split_frame(clf, dataclasses.replace(source, ids=ids), sizes)


def _through_predict_images(clf: Any, requests: Sequence[Sequence[ImageItem]]) -> list[list[dict[str, Any]]]:
    import pandas as pd

    from labelwise.data.sources import source_from_frame

    items = [item for request in requests for item in request]
    with tempfile.TemporaryDirectory(prefix="labelwise-serve-") as folder:
        frame = pd.DataFrame({_PATH_COLUMN: _write_images(folder, [item.data for item in items])})
        source = source_from_frame(frame, image_col=_PATH_COLUMN, root=folder)
        source = dataclasses.replace(source, ids=[item.id for item in items])
        return _split_frame(clf, source, [len(request) for request in requests])


def _write_images(folder: str, images: Sequence[bytes]) -> list[str]:
    """The bytes as files in ``folder``, so that they are decoded by the very loader `labelwise predict` uses on
    image files; their names, relative to ``folder``."""
    names = [f"{k}.img" for k in range(len(images))]
    for name, data in zip(names, images, strict=True):
        (Path(folder) / name).write_bytes(data)
    return names


def _split_frame(clf: Any, source: Any, sizes: list[int]) -> list[list[dict[str, Any]]]:
    return _split([json_safe(row) for row in clf.predictions_frame(source).to_dict(orient="records")], sizes)


def _split(records: list[dict[str, Any]], sizes: list[int]) -> list[list[dict[str, Any]]]:
    out, start = [], 0
    for size in sizes:
        out.append(records[start : start + size])
        start += size
    return out


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars as Python ones and NaN or infinities as None (JSON has neither).

    Example:
        >>> import numpy as np
        >>> json_safe({"p": np.float32(0.5), "u": float("nan"), "ok": np.bool_(True), "c": (1, 2)})
        {'p': 0.5, 'u': None, 'ok': True, 'c': [1, 2]}
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy and torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
