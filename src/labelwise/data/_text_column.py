"""A free-text column: TF-IDF weighted word and character n-grams of its cells (`TextColumn`).

A text cell becomes the TF-IDF vectors of its word 1-2-grams and of its character 2-5-grams (within words), each
fitted on the training texts by scikit-learn's ``TfidfVectorizer`` (vocabulary and idf stored as JSON, never
pickled) and L2-normalized, then joined (and normalized again, so each half weighs the same: scikit-learn's
``FeatureUnion`` of the two). Character n-grams carry the misspellings, inflections and rare words that word
n-grams miss: on the corpora of `benchmarks/text_baselines.py`, adding them raised logistic regression's test
accuracy from 0.57 to 0.65 on one and matched it on the others; normalizing the halves apart rather than together
(where the far more numerous character n-grams dominate the norm) was better on three of the four corpora.
`labelwise.inputs.text` turns the vectors into the network's ``"text"`` input.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from labelwise.errors import DataError

__all__ = ["MAX_CHARS", "TEXT", "TextColumn", "empty_texts", "texts_of"]

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
        """Learn each analyzer's vocabulary and idf from the training texts.

        Raises:
            DataError: no cell holds a term (a column of empty or one-character cells).
        """
        texts = texts_of(series)
        fitted = {key: _fit_analyzer(texts, params) for key, params in _ANALYZERS.items()}
        terms = {key: vocabulary for key, (vocabulary, _) in fitted.items()}
        idf = {key: weights for key, (_, weights) in fitted.items()}
        if not any(terms.values()):
            raise DataError(
                f"text column {name!r} holds no word or run of two characters in any training cell; expected text. "
                f"Pass column_kinds={{{name!r}: 'categorical'}} (or 'ignored') if it is not free text."
            )
        long = int((series.astype(str).str.len() > MAX_CHARS).sum())
        read = f"; {sum(map(len, terms.values())):,} terms (word 1-2-grams, character 2-5-grams)"
        cut = f"; {long} cells longer than {MAX_CHARS:,} characters read up to there" if long else ""
        return cls(name=name, terms=terms, idf=idf, truncated=long, why=why + read + cut)

    @property
    def width(self) -> int:
        """Features the column writes (into its own input group): one per term."""
        return self.vocabulary_size

    @property
    def vocabulary_size(self) -> int:
        """Number of terms over all analyzers: the width of the TF-IDF vector."""
        return sum(len(terms) for terms in self.terms.values())

    @cached_property
    def _counters(self) -> list[tuple[Any, sp.dia_matrix]]:
        """Per analyzer with terms: a `CountVectorizer` over its vocabulary and its idf as a diagonal matrix. Built
        once per column: rebuilding the vocabulary cost ~8 ms per call, on every `predict` and `serve` batch."""
        from sklearn.feature_extraction.text import CountVectorizer

        counters = []
        for key, params in _ANALYZERS.items():
            if self.terms[key]:
                vocabulary = {term: i for i, term in enumerate(self.terms[key])}
                options = {k: v for k, v in params.items() if k != "max_features"}
                counter = CountVectorizer(**options, vocabulary=vocabulary, dtype=np.float32)
                counters.append((counter, sp.diags(np.asarray(self.idf[key], dtype=np.float32))))
        return counters

    def vectors(self, series: pd.Series) -> sp.csr_matrix:
        """The L2-normalized TF-IDF vectors of ``series`` ``(N, vocabulary_size)``, as `TfidfVectorizer` makes them."""
        from sklearn.preprocessing import normalize

        texts = texts_of(series)
        parts = [sp.csr_matrix((len(texts), 0), dtype=np.float32)]
        for counter, idf in self._counters:
            counts = counter.transform(texts)
            counts.data = 1.0 + np.log(counts.data)  # sublinear tf
            parts.append(normalize(counts @ idf, norm="l2"))
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


def _fit_analyzer(texts: list[str], params: dict[str, Any]) -> tuple[list[str], list[float]]:
    """One analyzer's terms (in feature order) and idf on ``texts``; no terms when it finds none."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # deferred: only text runs need it

    for min_df in (2, 1):  # a tiny column may have no term in two texts: then every term seen once
        vectorizer = TfidfVectorizer(**params, sublinear_tf=True, min_df=min_df, dtype=np.float32)
        try:
            vectorizer.fit(texts)
        except ValueError:  # scikit-learn's "empty vocabulary"
            continue
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        return terms, [float(v) for v in vectorizer.idf_]
    return [], []


def empty_texts(series: pd.Series) -> np.ndarray:
    """Per cell, whether it holds no text (missing, empty or blank): bool ``(N,)``."""
    return np.array([not text.strip() for text in texts_of(series)], dtype=bool)


def texts_of(series: pd.Series) -> list[str]:
    """The cells as text: missing cells empty, bytes decoded as UTF-8 (bad bytes replaced), at most `MAX_CHARS`."""

    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("utf-8", errors="replace")
        return str(value)[:MAX_CHARS]

    return [text(value) for value in series.tolist()]
