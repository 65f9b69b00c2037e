"""`Task.decode`'s array work: decisions (a tensor or a numpy array) checked and turned back into labels.

numpy only, so that `predict --backend onnx` decodes the decisions it made in numpy without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labelwise._arrays import as_numpy
from labelwise.errors import ConfigError

__all__ = ["as_decisions", "bad_index_rows", "bad_mask_rows", "decode_indices", "decode_sets"]


def as_decisions(decisions: Any) -> np.ndarray:
    """Decisions as a numpy array of bools or numbers; anything else (strings, ragged lists) is refused."""
    try:
        values = as_numpy(decisions)
    except (TypeError, ValueError):
        values = None  # a ragged list
    if values is not None and values.dtype.kind in "biuf":
        return values
    raise ConfigError(
        f"decisions must be a tensor of class indices (or 0/1 per label), got {type(decisions).__name__}. "
        "Pass the `decisions` tensor a decision policy returns."
    )


def bad_mask_rows(decisions: np.ndarray) -> list[int]:
    """Rows of an ``(N, C)`` multilabel decision array holding a value other than 0/1 (probabilities, say)."""
    if decisions.dtype == np.bool_:
        return []
    return np.flatnonzero((~((decisions == 0) | (decisions == 1))).any(axis=1)).tolist()


def bad_index_rows(decisions: np.ndarray, num_classes: int) -> list[int]:
    """Rows of ``(N,)`` decisions that are no class index in -1..C-1 (integral floats count; NaN and 0.5 do not)."""
    if decisions.dtype == np.bool_:
        return []
    ok = (decisions >= -1) & (decisions < num_classes)
    if decisions.dtype.kind == "f":
        ok &= decisions == np.round(decisions)
    return np.flatnonzero(~ok).tolist()


def decode_sets(mask: np.ndarray, classes: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The label set (a tuple in ``classes`` order) of each row of the ``(N, C)`` 0/1 ``mask``."""
    # One nonzero over the (N, C) mask, not one per row: at 10^5 labels the per-row scans dominate.
    rows, cols = np.nonzero(mask.astype(bool))
    names = np.empty(len(classes), dtype=object)
    names[:] = list(classes)
    per_row = np.split(names[cols], np.searchsorted(rows, np.arange(1, len(mask))))
    return [tuple(labels.tolist()) for labels in per_row] if len(mask) else []


def decode_indices(decisions: np.ndarray, classes: Sequence[Any]) -> list[Any]:
    """The class of each ``(N,)`` index that `bad_index_rows` passed, None for -1 (abstained)."""
    indices = decisions.astype(np.int64)
    # One object array lookup instead of a Python loop; -1 picks the trailing None.
    names = np.empty(len(classes) + 1, dtype=object)
    names[: len(classes)] = list(classes)
    decoded: list[Any] = names[np.where(indices < 0, len(classes), indices)].tolist()
    return decoded
