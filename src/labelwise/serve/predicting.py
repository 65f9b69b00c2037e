"""One model call for a batch of requests, through the code path of ``labelwise predict``.

The batch's rows (or images) become one `Source`, `Classifier.predictions_frame` gives the ``predictions.csv``
table, and the table is cut back into one list of rows per request, with JSON-native values.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from labelwise.classifier import Classifier
from labelwise.data.sources import Source, source_from_frame
from labelwise.serve.bodies import ImageItem, TableRows

__all__ = ["json_safe", "predict_images", "predict_tables"]

_PATH_COLUMN = "path"


def predict_tables(clf: Classifier, requests: Sequence[TableRows]) -> list[list[dict[str, Any]]]:
    """Predictions for each request's rows of features (and images, for a model that also reads an image column,
    whose bytes `parse_rows` decoded); ``id`` is the row's position in its request."""
    ids = [str(i) for part in requests for i in range(part.num_rows)]
    frame, image_col = TableRows.frame(requests), clf.inputs.image_col
    with tempfile.TemporaryDirectory(prefix="labelwise-serve-") as folder:
        if image_col is not None:
            frame[image_col] = _write_images(folder, frame[image_col].tolist())
        source = source_from_frame(frame, image_col=image_col, root=folder)
        return _split(clf, dataclasses.replace(source, ids=ids), [part.num_rows for part in requests])


def predict_images(clf: Classifier, requests: Sequence[Sequence[ImageItem]]) -> list[list[dict[str, Any]]]:
    """Predictions for each request's images; ``id`` is the item's position, or its multipart file name."""
    items = [item for request in requests for item in request]
    with tempfile.TemporaryDirectory(prefix="labelwise-serve-") as folder:
        frame = pd.DataFrame({_PATH_COLUMN: _write_images(folder, [item.data for item in items])})
        source = source_from_frame(frame, image_col=_PATH_COLUMN, root=folder)
        source = dataclasses.replace(source, ids=[item.id for item in items])
        return _split(clf, source, [len(request) for request in requests])


def _write_images(folder: str, images: Sequence[bytes]) -> list[str]:
    """The bytes as files in ``folder``, so that they are decoded by the very loader `labelwise predict` uses on
    image files; their names, relative to ``folder``."""
    names = [f"{k}.img" for k in range(len(images))]
    for name, data in zip(names, images, strict=True):
        (Path(folder) / name).write_bytes(data)
    return names


def _split(clf: Classifier, source: Source, sizes: list[int]) -> list[list[dict[str, Any]]]:
    records = [json_safe(row) for row in clf.predictions_frame(source).to_dict(orient="records")]
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
