"""What ``labelwise inspect`` says about the input columns: each one's kind (as training decides it) and, for a
free-text column, its lengths, vocabulary and near-duplicate texts (`column_kinds_section`, `text_section`).

Near-duplicates are texts equal after lowercasing and dropping everything but letters and digits ("Call NOW!!" and
"call now"); paraphrases are not found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labelwise.data._fit_columns import fit_columns
from labelwise.data._text_column import MAX_CHARS, TextColumn, texts_of
from labelwise.data.sources import Source
from labelwise.data.splits import Split
from labelwise.errors import DataError

__all__ = ["column_kinds_section", "text_section"]

_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's token pattern: what the word n-grams are made of
_NOT_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def column_kinds_section(
    source: Source, split: Split | None, kinds: Mapping[str, str], text_cols: Sequence[str] | None
) -> tuple[dict[str, dict[str, str]] | None, list[str], list[str]]:
    """Each input column's ``{"kind", "why"}`` decided on the training rows as `labelwise.fit` decides them, the
    warnings (a column training would refuse), and the text columns."""
    if source.kind == "images" and source.image_col is None:
        return None, [], []
    found: dict[str, dict[str, str]] = {}
    texts: list[str] = []
    if source.feature_columns:
        frame = source.frame if split is None else source.frame.iloc[split.train]
        try:
            encoders = fit_columns(frame, columns=source.feature_columns, kinds=kinds, text_cols=text_cols)
        except DataError as err:
            return None, [f"`labelwise train` would stop here: {err}"], []
        found = {str(e.name): {"kind": e.kind, "why": e.why} for e in encoders}
        texts = [str(e.name) for e in encoders if isinstance(e, TextColumn)]
    if source.image_col is not None:
        found[source.image_col] = {"kind": "image", "why": "paths of image files"}
    return found, [], texts


def text_section(frame: pd.DataFrame, columns: Sequence[str], split: Split | None) -> dict[str, dict[str, Any]]:
    """Per text column: ``cells``, ``empty``, ``chars`` (median, max), ``words_per_cell``, ``vocabulary`` (distinct
    words), ``truncated`` (cells longer than `MAX_CHARS`), ``near_duplicates`` (texts that repeat another after
    normalizing) and ``shared_train_valid`` (normalized texts in both training and validation rows)."""
    return {name: _column_stats(frame[name], split) for name in columns}


def _column_stats(series: pd.Series, split: Split | None) -> dict[str, Any]:
    raw = [str(value) for value in series.tolist()]
    texts = texts_of(series)
    lengths = np.array([len(text) for text in raw])
    words = [_WORD.findall(text.lower()) for text in texts]
    keys = pd.Series([_NOT_ALNUM.sub("", text.lower()) for text in texts])
    empty = pd.Series([not text.strip() for text in texts])
    return {
        "cells": len(texts),
        "empty": int(empty.sum()),
        "chars": {"median": float(np.median(lengths)) if len(lengths) else 0.0, "max": int(lengths.max(initial=0))},
        "words_per_cell": round(float(np.mean([len(w) for w in words])) if words else 0.0, 1),
        "vocabulary": len({word for cell in words for word in cell}),
        "truncated": int((lengths > MAX_CHARS).sum()),
        "near_duplicates": int(keys[keys != ""].duplicated().sum()),
        "shared_train_valid": _shared(keys, split),
    }


def _shared(keys: pd.Series, split: Split | None) -> int | None:
    if split is None:
        return None
    train = set(keys.iloc[split.train]) - {""}
    return int(keys.iloc[split.valid].isin(train).sum())
