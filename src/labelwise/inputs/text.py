"""The ``"text"`` input group: the TF-IDF vectors of every text column (`labelwise.data._text_column`), packed for
an ``EmbeddingBag`` (`labelwise.models.text`).

The network reads each vector sparsely: a row is stored as its largest entries (term index, weight), so an
``EmbeddingBag`` with per-sample weights computes exactly the product of the TF-IDF vector with its first layer,
whatever the vocabulary size. Several text columns lay their vocabularies end to end.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from labelwise.data._text_column import TEXT, TextColumn
from labelwise.data.sources import Source
from labelwise.errors import DataError
from labelwise.inputs.columns import GroupValues, Transform
from labelwise.models.head import ModelSpec
from labelwise.models.text import LINEAR

__all__ = ["MAX_TERMS", "TextGroup", "pack", "text_columns", "text_frame"]

MAX_TERMS = 1024  # entries kept per row: the largest TF-IDF weights (a 2,000-character cell has about 1,000)


def pack(vectors: sp.csr_matrix, *, length: int) -> torch.Tensor:
    """Each row's ``length`` largest entries as ``(N, 2, length)`` float32: term index (exact in float32 below
    2**24 terms) and weight; unused slots hold index ``vectors.shape[1]`` (the padding term) and weight 0."""
    rows = vectors.shape[0]
    out = np.zeros((rows, 2, length), dtype=np.float32)
    out[:, 0, :] = vectors.shape[1]
    for i in range(rows):
        start, end = vectors.indptr[i], vectors.indptr[i + 1]
        data, index = vectors.data[start:end], vectors.indices[start:end]
        if end - start > length:
            keep = np.argpartition(-data, length)[:length]
            data, index = data[keep], index[keep]
        out[i, 0, : len(data)] = index
        out[i, 1, : len(data)] = data
    return torch.from_numpy(out)


@dataclass(frozen=True)
class TextGroup:
    """The ``"text"`` input group: every text column's TF-IDF vector, vocabularies end to end, as `pack` stores it."""

    columns: tuple[TextColumn, ...]
    key: str = TEXT

    @property
    def vocabulary_size(self) -> int:
        """Terms over all text columns; index ``vocabulary_size`` is the padding term."""
        return sum(column.vocabulary_size for column in self.columns)

    def encode(self, source: Source, *, skip_bad: bool) -> GroupValues:
        """Vectorize every row's text columns; a source without them is refused by name."""
        frame = text_frame(source, [column.name for column in self.columns])
        vectors = sp.hstack([column.vectors(frame[column.name]) for column in self.columns], format="csr")
        length = int(min(MAX_TERMS, max(1, np.diff(vectors.indptr).max(initial=0))))
        return GroupValues(pack(vectors, length=length), np.ones(len(frame), dtype=bool), [])

    def transform(self, *, train: bool) -> Transform | None:
        """Packed vectors are what the backbone reads (None: the batch passes unchanged)."""
        return None

    def model_spec(self, model: str, values: torch.Tensor, *, pretrained: bool) -> ModelSpec:
        """The ``"textbag"`` backbone over the joined vocabulary (a combiner's part beside an image backbone)."""
        name = "textbag" if model == "auto" else model
        return ModelSpec(backbone=name, in_features=self.vocabulary_size, pretrained=pretrained)

    def linear_spec(self, *, features: torch.Tensor | None) -> ModelSpec:
        """The linear text model over the joined vocabulary and, when given, the table's feature vector; its
        width is the Task's head width (`labelwise.models.text.sized_for`)."""
        width = 0 if features is None else int(features.shape[1])
        return ModelSpec(backbone=LINEAR, in_features=self.vocabulary_size, options={"features": width})


def text_frame(source: Source, names: Sequence[str]) -> pd.DataFrame:
    """The table of ``source``, checked to hold the text columns ``names`` (a missing one is refused by name)."""
    frame = source.frame if source.kind == "table" or source.image_col else None
    present = [] if frame is None else [str(c) for c in frame.columns]
    missing = [name for name in names if name not in present]
    if missing:
        close = difflib.get_close_matches(missing[0], present, n=1, cutoff=0.6)
        hint = f" (the data has {close[0]!r})" if close else ""
        raise DataError(
            f"this model reads the text column(s) {', '.join(map(repr, missing))}, which the data given lacks{hint}. "
            "Pass a table with the text columns used at training."
        )
    assert frame is not None  # noqa: S101 - a frame holds every name when none is missing
    return frame


def text_columns(encoders: Sequence[Any]) -> tuple[TextColumn, ...]:
    """The text columns among ``encoders``, in order."""
    return tuple(encoder for encoder in encoders if isinstance(encoder, TextColumn))
