"""The feature columns beyond numbers and categories: booleans, dates and times, and the columns left out.

Each writes into the shared feature vector like `NumericColumn` (``write`` returns a description of cells it cannot
read instead of guessing), and stores itself as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from labelwise.data._columns import ColumnName, OneValueColumn, bad_cells
from labelwise.data.column_kinds import boolean_value

__all__ = ["BooleanColumn", "DatetimeColumn", "IgnoredColumn"]

_DAY_NS = 86_400 * 10**9
# Calendar features as (name, period, value of a timestamp): a point on a circle, so December sits next to January.
_CYCLES = (
    ("month", 12, lambda t: t.dt.month - 1),
    ("weekday", 7, lambda t: t.dt.day_of_week),
    ("day", 31, lambda t: t.dt.day - 1),
)
_HOUR = ("hour", 24, lambda t: t.dt.hour + t.dt.minute / 60)
_DAY_MONTH = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}"


@dataclass(frozen=True, kw_only=True)
class BooleanColumn(OneValueColumn):
    """A yes/no column: 1.0 for true, 0.0 for false, whichever way it is spelled (`column_kinds.BOOLEAN_SPELLINGS`).

    Trained on ``True``/``False``, it reads ``1``/``0`` or ``yes``/``no`` alike; any other value is refused.
    Missing cells take ``fill`` (the majority value) and, when training had some, a ``:missing`` indicator.
    """

    group: ClassVar[str] = "features"
    kind: ClassVar[str] = "boolean"
    name: ColumnName
    fill: float
    indicator: bool
    why: str = ""

    @classmethod
    def fit(cls, series: pd.Series, name: ColumnName, *, why: str = "") -> BooleanColumn:
        values, _ = _booleans(series)
        observed = values[~np.isnan(values)]
        fill = float(observed.mean() >= 0.5) if observed.size else 0.0
        return cls(name=name, fill=fill, indicator=bool(observed.size < values.size), why=why)

    def values(self, series: pd.Series) -> tuple[np.ndarray, str | None]:
        """The column as 1.0/0.0 ``(N,)`` with NaN for missing cells, and a description of cells that are not
        true/false, if any."""
        values, bad = _booleans(series)
        if bad.size:
            return values, f"{bad_cells(series, bad, name=self.name)} (a yes/no column takes true/false, yes/no, 1/0)"
        return values, None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "fill": self.fill, "indicator": self.indicator, "why": self.why}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BooleanColumn:
        return cls(name=data["name"], fill=float(data["fill"]), indicator=bool(data["indicator"]),
                   why=data.get("why", ""))  # fmt: skip


def _booleans(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """1.0/0.0 per cell (NaN for missing or blank) and the positions of cells that are not a boolean."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    per_unique = [boolean_value(value) for value in uniques]
    blank = [str(value).strip() == "" for value in uniques]
    table = np.array([np.nan if b is None else float(b) for b in per_unique] + [np.nan])
    values = table[np.where(codes < 0, len(uniques), codes)]
    wrong = np.array([b is None and not empty for b, empty in zip(per_unique, blank, strict=True)] + [False])
    return values, np.flatnonzero(wrong[np.where(codes < 0, len(uniques), codes)])


@dataclass(frozen=True, kw_only=True)
class DatetimeColumn:
    """Dates and times: the elapsed days since training's first date (standardized), and the month, weekday and day
    of the month (and the hour, when training had times of day) each as a point on a circle (sin, cos).

    Missing cells take the median date and, when training had some, a ``:missing`` indicator.
    """

    group: ClassVar[str] = "features"
    kind: ClassVar[str] = "datetime"
    name: ColumnName
    mean: float  # elapsed days since the Unix epoch: mean and std over the training dates
    std: float
    fill: float
    hours: bool
    indicator: bool
    dayfirst: bool = False  # 03/01/2024 is 3 January: the column also holds 25/04/2024, which has no month 25
    why: str = ""

    @classmethod
    def fit(cls, series: pd.Series, name: ColumnName, *, why: str = "") -> DatetimeColumn:
        dayfirst = _dayfirst(series)
        if dayfirst:
            why += "; read day first (as 25/04/2024 shows)"
        stamps, _ = _timestamps(series, dayfirst=dayfirst)
        days = _days(stamps)
        observed = days[~np.isnan(days)]
        std = float(observed.std()) if observed.size else 1.0
        has_time = bool(((stamps.dt.hour != 0) | (stamps.dt.minute != 0)).any())
        return cls(name=name, mean=float(observed.mean()) if observed.size else 0.0, std=std if std > 1e-9 else 1.0,
                   fill=float(np.median(observed)) if observed.size else 0.0, hours=has_time,
                   indicator=bool(observed.size < days.size), dayfirst=dayfirst, why=why)  # fmt: skip

    @property
    def _cycles(self) -> tuple[Any, ...]:
        return (*_CYCLES, _HOUR) if self.hours else _CYCLES

    @property
    def width(self) -> int:
        return 1 + 2 * len(self._cycles) + self.indicator

    @property
    def feature_names(self) -> list[str]:
        names = [f"{self.name}:days"] + [f"{self.name}:{c[0]}:{f}" for c in self._cycles for f in ("sin", "cos")]
        return names + ([f"{self.name}:missing"] if self.indicator else [])

    def write(self, series: pd.Series, out: np.ndarray) -> str | None:
        stamps, bad = _timestamps(series, dayfirst=self.dayfirst)
        if bad.size:
            return f"{bad_cells(series, bad, name=self.name)} (a date column takes dates such as 2024-03-01)"
        days = _days(stamps)
        missing = np.isnan(days)
        stamps = stamps.fillna(pd.Timestamp(int(self.fill * _DAY_NS)))
        out[:, 0] = (np.where(missing, self.fill, days) - self.mean) / self.std
        for i, (_, period, value) in enumerate(self._cycles):
            angle = 2 * np.pi * value(stamps).to_numpy(dtype=np.float64) / period
            out[:, 1 + 2 * i], out[:, 2 + 2 * i] = np.sin(angle), np.cos(angle)
        if self.indicator:
            out[:, -1] = missing
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "mean": self.mean, "std": self.std, "fill": self.fill,
                "hours": self.hours, "indicator": self.indicator, "dayfirst": self.dayfirst,
                "why": self.why}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatetimeColumn:
        return cls(name=data["name"], mean=float(data["mean"]), std=float(data["std"]), fill=float(data["fill"]),
                   hours=bool(data["hours"]), indicator=bool(data["indicator"]),
                   dayfirst=bool(data.get("dayfirst", False)), why=data.get("why", ""))  # fmt: skip


def _dayfirst(series: pd.Series) -> bool:
    """Whether the column's ``a/b/yyyy`` dates put the day first: some ``a`` is above 12 and no ``b`` is."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return False
    parts = series.dropna().astype(str).str.extract(_DAY_MONTH).dropna().astype(int)
    return bool(len(parts) and (parts[0] > 12).any() and not (parts[1] > 12).any())


def _timestamps(series: pd.Series, *, dayfirst: bool) -> tuple[pd.Series, np.ndarray]:
    """The column as timezone-naive timestamps (NaT for missing or blank) and the positions of cells that are not.

    Every cell is read the same way (pandas alone decides per cell, so 03/01 and 25/04 in one column would be read
    month first and day first); ``dayfirst`` applies to ``a/b/yyyy`` cells, never to ISO ``yyyy-mm-dd`` ones.
    """
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = pd.to_datetime(series)
        given = np.zeros(len(series), dtype=bool)  # a datetime column has no unreadable cells
    else:
        text = series.astype(str).str.strip()
        blank = series.isna() | (text == "")
        iso = text.str.match(r"\d{4}")
        stamps = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
        for rows, first in ((~blank & iso, False), (~blank & ~iso, dayfirst)):
            if rows.any():
                parsed = pd.to_datetime(text[rows], errors="coerce", format="mixed", dayfirst=first)
                if getattr(parsed.dt, "tz", None) is not None:
                    parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
                stamps[rows] = parsed.astype("datetime64[ns]")
        given = (~blank).to_numpy()
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = stamps.astype("datetime64[ns]")
    return stamps, np.flatnonzero(given & stamps.isna().to_numpy())


def _days(stamps: pd.Series) -> np.ndarray:
    nanos = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    return np.where(stamps.isna().to_numpy(), np.nan, nanos / _DAY_NS)


@dataclass(frozen=True, kw_only=True)
class IgnoredColumn:
    """A column the model does not read (an identifier, a constant, an empty column; or one the user left out):
    kept in the run so ``inspect``, the summary and `Classifier.info` say why. It writes no feature, and data to
    predict on need not have it."""

    group: ClassVar[str] = "features"
    name: ColumnName
    kind: str  # "identifier", "ignored" or "text"
    why: str = ""
    width: ClassVar[int] = 0
    feature_names: ClassVar[list[str]] = []

    def write(self, series: pd.Series, out: np.ndarray) -> str | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "ignored", "name": self.name, "kind": self.kind, "why": self.why}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IgnoredColumn:
        return cls(name=data["name"], kind=str(data.get("kind", "ignored")), why=data.get("why", ""))
