"""Per-column pieces of `TablePreprocessor`: what each column kind learns at fit time and how it writes features."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from labelwise.errors import DataError, format_examples, format_rows

ColumnName = str | int
UNSEEN = "<unseen>"
# Values of one categorical column that get a feature of their own; 1,024 one-hot features of 20,000 rows are 80 MB.
MAX_ONE_HOT = 1024


def format_column_list(columns: Iterable[Any]) -> str:
    """Column names for a message: up to 8 reprs and how many more."""
    return format_examples(list(columns), limit=8) or "no columns"


def numeric_values(series: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64 with NaN for missing or blank cells, and the positions of non-numeric or infinite cells.

    ``series`` may also be a numeric array already read, NaN for missing (`labelwise serve` reads JSON rows so).
    """
    if isinstance(series, np.ndarray):
        values = np.asarray(series, dtype=np.float64)
        given = ~np.isnan(values)
        return values, np.flatnonzero(given & ~np.isfinite(values))
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        blank = np.zeros(len(values), dtype=bool)
        given = ~np.isnan(values)
    else:
        text = series.astype("str").str.strip()
        blank = (text == "").to_numpy(dtype=bool, na_value=False)
        given = series.notna().to_numpy() & ~blank
        values = pd.to_numeric(series.where(~blank), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(given & ~np.isfinite(values))
    return values, bad


def bad_cells(series: pd.Series | np.ndarray, bad: np.ndarray, *, name: ColumnName) -> str:
    shown = format_examples(pd.Series(series).iloc[bad[:20]].drop_duplicates().tolist())
    return f"{name!r} in {format_rows(bad.tolist())} ({shown})"


class OneValueColumn:
    """What a column writing one float per row (and a ``:missing`` indicator when training had missing cells) does
    with the values its ``values`` reads: fill the missing ones, ``scale`` them, write."""

    name: ColumnName
    fill: float
    indicator: bool

    def values(self, series: pd.Series) -> tuple[np.ndarray, str | None]:
        raise NotImplementedError

    def scale(self, values: np.ndarray) -> np.ndarray:
        return values

    @property
    def width(self) -> int:
        """Number of features this column writes."""
        return 1 + self.indicator

    @property
    def feature_names(self) -> list[str]:
        """Names of the features this column writes."""
        return [str(self.name)] + ([f"{self.name}:missing"] if self.indicator else [])

    def write(self, series: pd.Series, out: np.ndarray) -> str | None:
        """Write ``(N, width)`` features into ``out``; return a description of unreadable cells instead, if any."""
        values, problem = self.values(series)
        if problem:
            return problem
        missing = np.isnan(values)
        out[:, 0] = self.scale(np.where(missing, self.fill, values))
        if self.indicator:
            out[:, 1] = missing
        return None


@dataclass(frozen=True, kw_only=True)
class NumericColumn(OneValueColumn):
    """One numeric column, mapped to a standard normal through its training quantiles, then encoded piecewise-linearly
    over quantile bins; missing values replaced by ``fill`` (the fit-time median) first.

    The quantile map (as scikit-learn's ``QuantileTransformer(output_distribution="normal")``, which the tabular
    deep learning papers preprocess with: Gorishniy et al. 2021, RealMLP) gives every column the same scale whatever
    its outliers and skew; the piecewise-linear encoding (Gorishniy et al. 2022) lets one layer bend at each bin,
    which trees get for free. Measured with `benchmarks/tables.py` against (x - mean) / std alone, 2 seeds: test
    ROC-AUC on river's shuttle 0.996 -> 1.000, phishing 0.969 -> 0.977, segment's macro-F1 0.961 -> 0.974.
    Runs saved before it (no ``quantiles``) keep standardizing.

    Args:
        name: the column.
        mean: mean of the observed values at fit time.
        std: their standard deviation (population; 1.0 for a constant column so it maps to 0).
        fill: value that replaces a missing cell before scaling.
        indicator: whether a 0/1 ``name:missing`` feature follows (the column had missing values at fit time).
        quantiles: the distinct training quantiles (knots), rising; None: standardize.
        scores: the standard normal score of each knot: the inverse normal CDF of its level (the middle of its
            levels when several quantiles share the value, as a 0/1 column's do); between knots the map is linear.
        edges: the distinct edges of at most 16 quantile bins of the piecewise-linear encoding; None: no encoding.
    """

    group: ClassVar[str] = "features"  # writes into the shared feature vector (`labelwise.inputs.columns`)
    kind: ClassVar[str] = "numeric"
    name: ColumnName
    mean: float
    std: float
    fill: float
    indicator: bool
    why: str = ""
    quantiles: tuple[float, ...] | None = None
    scores: tuple[float, ...] | None = None
    edges: tuple[float, ...] | None = None

    @classmethod
    def fit(cls, series: pd.Series, name: ColumnName, *, why: str = "") -> NumericColumn:
        """Learn mean, std, median and quantiles from the observed values of ``series``."""
        values, bad = numeric_values(series)
        if bad.size:
            raise DataError(
                f"feature column {bad_cells(series, bad, name=name)} holds non-numeric or infinite values. Expected "
                "finite numbers or empty cells (filled with the median); fix or blank those cells."
            )
        observed = values[~np.isnan(values)]
        std = float(observed.std()) if observed.size else 1.0
        return cls(
            name=name,
            mean=float(observed.mean()) if observed.size else 0.0,
            std=std if std > 1e-12 else 1.0,
            fill=float(np.median(observed)) if observed.size else 0.0,
            indicator=bool(observed.size < values.size),
            why=why,
            **_knots(observed),
            edges=_edges(observed),
        )

    @property
    def width(self) -> int:
        """The scaled value, one feature per bin, and the ``:missing`` indicator when there is one."""
        return 1 + self.num_bins + self.indicator

    @property
    def num_bins(self) -> int:
        """Bins of the piecewise-linear encoding (0 without one)."""
        return 0 if self.edges is None else len(self.edges) - 1

    @property
    def feature_names(self) -> list[str]:
        """Names of the features this column writes."""
        bins = [f"{self.name}:bin{i}" for i in range(self.num_bins)]
        return [str(self.name), *bins] + ([f"{self.name}:missing"] if self.indicator else [])

    def write(self, series: pd.Series, out: np.ndarray) -> str | None:
        """Write ``(N, width)`` features into ``out``; return a description of unreadable cells instead, if any."""
        filled, missing, problem = self.filled(series)
        if problem:
            return problem
        out[:, 0] = self.scale(filled)
        if self.edges is not None:
            out[:, 1 : 1 + self.num_bins] = piecewise_linear(filled, np.asarray(self.edges))
        if self.indicator:
            out[:, -1] = missing
        return None

    def filled(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, str | None]:
        """The column as float64 with missing cells replaced by ``fill``, where they were, and unreadable cells."""
        values, problem = self.values(series)
        missing = np.isnan(values)
        return np.where(missing, self.fill, values), missing, problem

    def values(self, series: pd.Series) -> tuple[np.ndarray, str | None]:
        """The column as float64 ``(N,)`` with NaN for missing cells, and a description of non-numeric cells, if any."""
        values, bad = numeric_values(series)
        return values, bad_cells(series, bad, name=self.name) if bad.size else None

    def scale(self, values: np.ndarray) -> np.ndarray:
        """Map through the training quantiles to a standard normal (or standardize, for runs without them)."""
        if self.quantiles is None or self.scores is None:
            return (values - self.mean) / self.std
        return np.interp(values, self.quantiles, self.scores)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"type": "numeric", "name": self.name, "mean": self.mean, "std": self.std, "fill": self.fill,
                "indicator": self.indicator, "why": self.why,
                "quantiles": _listed(self.quantiles), "scores": _listed(self.scores),
                "edges": _listed(self.edges)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericColumn:
        """Inverse of `to_dict`."""
        return cls(name=data["name"], mean=float(data["mean"]), std=float(data["std"]), fill=float(data["fill"]),
                   indicator=bool(data["indicator"]), why=data.get("why", ""),
                   quantiles=_floats(data.get("quantiles")), scores=_floats(data.get("scores")),
                   edges=_floats(data.get("edges")))  # fmt: skip


# Quantiles kept per column: one per 30 observed values, within [10, 1000]. Fewer than scikit-learn's default of
# 1,000 smooth the map on small tables (measured in `benchmarks/table_recipes.py`), and keep labelwise.json small.
_MIN_QUANTILES, _MAX_QUANTILES, _ROWS_PER_QUANTILE = 10, 1000, 30
# scikit-learn's QuantileTransformer clips the levels to this distance from 0 and 1 before the normal's inverse.
_LEVEL_BOUND = 1e-7


def _knots(observed: np.ndarray) -> dict[str, tuple[float, ...] | None]:
    """``quantiles`` (distinct) and their normal ``scores``, as `NumericColumn` keeps them."""
    if observed.size == 0:
        return {"quantiles": None, "scores": None}
    from scipy.special import ndtri  # deferred: only fitting a numeric column needs it

    count = int(np.clip(observed.size // _ROWS_PER_QUANTILE, _MIN_QUANTILES, _MAX_QUANTILES))
    levels = np.linspace(0.0, 1.0, count)
    values = np.percentile(observed, levels * 100)
    knots, group = np.unique(values, return_inverse=True)
    middle = np.bincount(group, weights=levels) / np.bincount(group)  # a value held by several quantiles
    scores = ndtri(np.clip(middle, _LEVEL_BOUND, 1.0 - _LEVEL_BOUND))
    return {"quantiles": tuple(float(k) for k in knots), "scores": tuple(float(z) for z in scores)}


def _listed(values: tuple[float, ...] | None) -> list[float] | None:
    return None if values is None else list(values)


def _floats(values: list[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


# Bins of the piecewise-linear encoding (Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular
# Deep Learning"): quantile bins, 16 as the rtdl_num_embeddings examples use.
_NUM_BINS = 16


def _edges(observed: np.ndarray) -> tuple[float, ...] | None:
    """Distinct quantile edges of at most `_NUM_BINS` bins; None below 2 bins (a 0/1 column: its value says all)."""
    if observed.size == 0:
        return None
    edges = np.unique(np.percentile(observed, np.linspace(0, 100, _NUM_BINS + 1), method="lower"))  # observed values
    return tuple(float(e) for e in edges) if len(edges) >= 3 else None


def piecewise_linear(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``(N, len(edges) - 1)``: how far each value has come through each bin, 0 before it and 1 after it.

    Example:
        >>> piecewise_linear(np.array([0.5, 2.0, 9.0]), np.array([0.0, 1.0, 3.0])).tolist()
        [[0.5, 0.0], [1.0, 0.5], [1.0, 1.0]]
    """
    left, width = edges[:-1], np.diff(edges)
    with np.errstate(over="ignore"):  # a bin of subnormal width: its quotients overflow to inf, clipped to 1
        return np.clip((values[:, None] - left) / width, 0.0, 1.0)  # type: ignore[no-any-return]


def category_keys(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Factorize a column into ``(codes, keys)``: ``keys[codes[i]]`` is row i's value as a string, code -1 = missing.

    Only the distinct values go through Python, so this is fast on long columns. Integral floats print as ints,
    so a code column read as float (because of one blank cell) matches the same column read as int; booleans print
    as ``True``/``False`` whether read as bool or as object. Distinct values with the same key share one code.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names = [_key(value) for value in uniques]
    keys = list(dict.fromkeys(names))
    if len(keys) < len(names):  # e.g. 1 and 1.0 in one object column
        remap = np.array([keys.index(name) for name in names], dtype=np.int64)
        codes = np.where(codes < 0, -1, remap[np.maximum(codes, 0)])
    return np.asarray(codes, dtype=np.int64), keys


def _key(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, kw_only=True)
class CategoricalColumn:
    """One categorical column: one-hot over ``categories`` plus an ``<unseen>`` bucket.

    Every training value gets its own feature (one-hot into the first layer is a learned embedding of the value),
    up to `MAX_ONE_HOT`; a column with more values one-hots the most frequent `MAX_ONE_HOT` and tells the rest
    apart by a ``:frequency`` feature (the log of the value's training count), so no value is silently merged.

    Args:
        name: the column.
        categories: the one-hot values, sorted, as strings.
        fill: the most frequent value, which replaces a missing cell.
        indicator: whether a 0/1 ``name:missing`` feature follows (the column had missing values at fit time).
        counts: training count of every value, when the column has more than `MAX_ONE_HOT` (else empty).
        why: how the column's kind was decided.
    """

    group: ClassVar[str] = "features"  # writes into the shared feature vector (`labelwise.inputs.columns`)
    kind: ClassVar[str] = "categorical"
    name: ColumnName
    categories: tuple[str, ...]
    fill: str
    indicator: bool
    counts: Mapping[str, int] = field(default_factory=dict)
    why: str = ""

    @classmethod
    def fit(cls, series: pd.Series, name: ColumnName, *, why: str = "") -> CategoricalColumn:
        """Learn the values of ``series`` (all of them, or the `MAX_ONE_HOT` most frequent and every count)."""
        codes, keys = category_keys(series)
        counts = np.bincount(codes[codes >= 0], minlength=len(keys))
        ranked = sorted(zip(keys, counts.tolist(), strict=True), key=lambda item: (-item[1], item[0]))
        many = len(ranked) > MAX_ONE_HOT
        if many:
            why += f"; the {MAX_ONE_HOT} most frequent one-hot, the other {len(ranked) - MAX_ONE_HOT} by frequency"
        return cls(
            name=name,
            categories=tuple(sorted(key for key, _ in ranked[:MAX_ONE_HOT])),
            fill=ranked[0][0] if ranked else "",
            indicator=bool((codes < 0).any()),
            counts=dict(ranked) if many else {},
            why=why,
        )

    @property
    def width(self) -> int:
        """Number of features this column writes."""
        return len(self.categories) + 1 + bool(self.counts) + self.indicator

    @property
    def feature_names(self) -> list[str]:
        """Names of the features this column writes."""
        names = [f"{self.name}={category}" for category in (*self.categories, UNSEEN)]
        names += [f"{self.name}:frequency"] if self.counts else []
        return names + ([f"{self.name}:missing"] if self.indicator else [])

    def write(self, series: pd.Series, out: np.ndarray) -> str | None:
        """Write ``(N, width)`` one-hot features into ``out``; categorical columns never hold bad cells."""
        codes, keys = category_keys(series)
        unseen = len(self.categories)
        position = {category: i for i, category in enumerate(self.categories)}
        # Map each distinct key once (fill for missing, the unseen bucket for new values), then every row by index.
        per_key = np.array([position.get(key, unseen) for key in keys] + [position.get(self.fill, unseen)])
        row_keys = np.where(codes < 0, len(keys), codes)
        out[:, : unseen + 1] = 0.0
        out[np.arange(len(row_keys)), per_key[row_keys]] = 1.0
        if self.counts:
            total = np.log1p(sum(self.counts.values()))
            frequency = np.log1p([self.counts.get(key, 0) for key in keys] + [self.counts[self.fill]]) / total
            out[:, unseen + 1] = frequency[row_keys]
        if self.indicator:
            out[:, -1] = codes < 0
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"type": "categorical", "name": self.name, "categories": list(self.categories), "fill": self.fill,
                "indicator": self.indicator, "counts": dict(self.counts), "why": self.why}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalColumn:
        """Inverse of `to_dict`."""
        return cls(name=data["name"], categories=tuple(data["categories"]), fill=str(data["fill"]),
                   indicator=bool(data["indicator"]), counts=data.get("counts", {}),
                   why=data.get("why", ""))  # fmt: skip


def check_fit_frame(frame: pd.DataFrame, *, columns: Sequence[ColumnName]) -> None:
    """Refuse a fit frame without rows, or feature columns that are missing or repeated."""
    if not len(columns):
        raise DataError(
            "no feature columns to learn from: every column is a target, id or image column. Expected at least one "
            "feature column; check `--target` and `--id-col`."
        )
    if len(frame) == 0:
        raise DataError(f"the table has columns {format_column_list(frame.columns)} but no rows; expected data rows.")
    duplicated = sorted(str(c) for c, count in Counter(columns).items() if count > 1)
    if duplicated:
        raise DataError(f"feature columns are listed more than once: {format_examples(duplicated)}; list each once.")
    present: set[Hashable] = set(frame.columns)
    unknown = [name for name in columns if name not in present]
    if unknown:
        hints = [difflib.get_close_matches(str(n), [str(c) for c in frame.columns], n=1) for n in unknown]
        hint = "; ".join(f"{n!r} -> did you mean {h[0]!r}?" for n, h in zip(unknown, hints, strict=True) if h)
        raise DataError(
            f"feature column(s) {format_examples(unknown)} are not in the table, which has "
            f"{format_column_list(frame.columns)}. {hint + ' ' if hint else ''}Pass column names as in the header."
        )
