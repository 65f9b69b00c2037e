"""A free-text column: TF-IDF weighted word and character n-grams of its cells (`TextColumn`).

A text cell becomes the TF-IDF vector of its word 1-2-grams and its character 2-5-grams (within words), each part
fitted on the training texts by scikit-learn's ``TfidfVectorizer`` (vocabulary and idf stored as JSON, never
pickled), joined and L2-normalized. Character n-grams carry the misspellings, inflections and rare words that word
n-grams miss: on the corpora of `benchmarks/text_baselines.py`, adding them raised logistic regression's test
accuracy from 0.57 to 0.65 on one and matched it on the others. `labelwise.inputs.text` turns the vectors into the
network's ``"text"`` input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["MAX_CHARS", "TEXT", "TextColumn", "texts_of"]

TEXT = "text"  # the input group of the text columns
MAX_CHARS = 20_000  # a longer cell is read up to here (a 10 MB cell would take seconds and hold one row's worth)
# Per analyzer: n-gram range and how many of the most frequent terms (seen in at least 2 texts) are kept.
_ANALYZERS: dict[str, dict[str, Any]] = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "max_features": 100_000},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "max_features": 100_000},
}


@dataclass(frozen=True, kw_only=True)
class TextColumn:
    """One text column: per analyzer, the vocabulary (terms in index order) and their idf.

    Args:
        name: the column.
        terms: analyzer name -> its terms, in feature order.
        idf: analyzer name -> the idf of each term.
        truncated: how many training cells were longer than `MAX_CHARS` (read up to it).
        why: how the column's kind was decided.
    """

    group: ClassVar[str] = TEXT
    kind: ClassVar[str] = "text"
    name: str
    terms: dict[str, list[str]]
    idf: dict[str, list[float]]
    truncated: int = 0
    why: str = ""

    @classmethod
    def fit(cls, series: pd.Series, name: str, *, why: str = "") -> TextColumn:
        """Learn each analyzer's vocabulary and idf from the training texts."""
        from sklearn.feature_extraction.text import TfidfVectorizer  # deferred: only text runs need it

        texts = texts_of(series)
        terms, idf = {}, {}
        for key, params in _ANALYZERS.items():
            vectorizer = TfidfVectorizer(**params, sublinear_tf=True, min_df=2, dtype=np.float32)
            try:
                vectorizer.fit(texts)
            except ValueError:  # no term in two texts (a tiny column): keep every term seen once
                vectorizer = TfidfVectorizer(**params, sublinear_tf=True, dtype=np.float32).fit(texts)
            terms[key] = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
            idf[key] = [float(v) for v in vectorizer.idf_]
        long = int((series.astype(str).str.len() > MAX_CHARS).sum())
        return cls(name=name, terms=terms, idf=idf, truncated=long, why=why)

    @property
    def vocabulary_size(self) -> int:
        """Number of terms over all analyzers: the width of the TF-IDF vector."""
        return sum(len(terms) for terms in self.terms.values())

    def vectors(self, series: pd.Series) -> sp.csr_matrix:
        """The L2-normalized TF-IDF vectors of ``series`` ``(N, vocabulary_size)``, as `TfidfVectorizer` makes them."""
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        texts = texts_of(series)
        parts = []
        for key, params in _ANALYZERS.items():
            vocabulary = {term: i for i, term in enumerate(self.terms[key])}
            options = {k: v for k, v in params.items() if k != "max_features"}
            counts = CountVectorizer(**options, vocabulary=vocabulary, dtype=np.float32).transform(texts)
            counts.data = 1.0 + np.log(counts.data)  # sublinear tf
            parts.append(counts @ sp.diags(np.asarray(self.idf[key], dtype=np.float32)))
        return normalize(sp.hstack(parts, format="csr"), norm="l2")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {"type": self.kind, "name": self.name, "terms": self.terms, "idf": self.idf,
                "truncated": self.truncated, "why": self.why}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextColumn:
        """Inverse of `to_dict`."""
        return cls(name=data["name"], terms=dict(data["terms"]), idf=dict(data["idf"]),
                   truncated=int(data.get("truncated", 0)), why=data.get("why", ""))  # fmt: skip


def texts_of(series: pd.Series) -> list[str]:
    """The cells as text: missing cells empty, bytes decoded as UTF-8 (bad bytes replaced), at most `MAX_CHARS`."""

    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("utf-8", errors="replace")
        return str(value)[:MAX_CHARS]

    return [text(value) for value in series.tolist()]
