"""What each feature column of a table is, decided once at training from its values, with the reason.

A person reading a table sees at a glance that ``customer_id`` names rows, ``signup_date`` is a date, ``is_member``
is yes/no and ``city`` is a category however many cities there are; `infer_column_kind` reads a column the same way.
The kinds:

* ``numeric``: numbers (a string column whose cells are all numbers too);
* ``boolean``: a boolean column, or two text values that spell true/false (``yes/no``, ``y/n``, ``t/f``, ``on/off``,
  ``"1"/"0"``); a number column of 0 and 1 stays numeric, and reads ``True``/``False`` as 1/0 too;
* ``datetime``: dates or times (a datetime column, or strings like ``2024-03-01`` or ``03/01/2024 10:00``);
* ``identifier``: a different value in every row (integers named like an id, or short strings) -- left out, since
  it names the row rather than describing it;
* ``text``: free text (several words per cell, most cells distinct);
* ``categorical``: everything else;
* ``ignored``: a column that holds nothing to learn from (every cell empty, or one value in every row).

The column's name is only a tie-breaker: an all-distinct integer column is an identifier when named like one
(``id``, ``customer_id``, ``uuid``, ``key``). `--column-kinds name=kind` (``column_kinds=``) overrides any decision.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelwise.errors import ConfigError, format_examples

__all__ = [
    "BOOLEAN_SPELLINGS",
    "KINDS",
    "ColumnKind",
    "boolean_value",
    "check_column_kinds",
    "infer_column_kind",
    "named_like_id",
    "parse_column_kinds",
    "parse_text_cols",
]

KINDS = ("numeric", "categorical", "boolean", "datetime", "identifier", "text", "ignored")
# Each spelling of true and of false, lower case; a boolean column accepts any of them at prediction time.
BOOLEAN_SPELLINGS: Mapping[str, bool] = {
    **dict.fromkeys(("true", "yes", "y", "t", "on", "1", "1.0"), True),
    **dict.fromkeys(("false", "no", "n", "f", "off", "0", "0.0"), False),
}
_BOOLEAN_PAIRS = ({"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"}, {"on", "off"}, {"1", "0"})
_ID_WORDS = frozenset({"id", "ids", "uuid", "guid", "key", "idx", "index"})
# ISO dates (2024-03-01, 2024/03/01, with an optional time) and day-first/month-first dates (03/01/2024, 3.1.24).
_DATE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?\s*$")
_SAMPLE = 500  # distinct values looked at to tell dates and text (enough for the shares below to be stable)
_TEXT_WORDS = 3.0  # mean words per cell from which strings are free text rather than category names
_TEXT_DISTINCT = 0.5  # ... when at least this share of the cells are distinct
_MIN_ID_ROWS = 20  # fewer rows than this cannot show that every row has its own value by more than chance
_DATE_SHARE = 0.95
_NUMBERING_SPAN = 1.5  # distinct whole numbers spanning at most this times their count number the rows


@dataclass(frozen=True)
class ColumnKind:
    """A column's kind (one of `KINDS`) and why, in words a user reads in ``inspect`` and the train summary."""

    kind: str
    why: str


def boolean_value(value: object) -> bool | None:
    """``value`` read as a boolean (True/False, yes/no, y/n, t/f, on/off, 1/0, any case), None when it is none."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return BOOLEAN_SPELLINGS.get(str(value).strip().lower())


def infer_column_kind(series: pd.Series, name: object) -> ColumnKind:
    """The kind of one feature column, from its values (see the module docstring for the rules).

    Example:
        >>> infer_column_kind(pd.Series(["yes", "no", "yes"]), "is_member")
        ColumnKind(kind='boolean', why="two values, 'no' and 'yes', read as false/true")
        >>> infer_column_kind(pd.Series(range(100, 150)), "customer_id").kind
        'identifier'
    """
    codes, uniques = pd.factorize(series.where(~_blank(series)), use_na_sentinel=True)
    given = int((codes >= 0).sum())
    if given == 0:
        return ColumnKind("ignored", f"all {len(series)} cells are empty")
    if len(uniques) == 1 and given == len(series):
        return ColumnKind("ignored", f"one value ({_show(uniques[0])}) in every row")
    # A number column holding only 0 and 1 stays numeric (another count may come later); text spelling yes/no and
    # the like is boolean.
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if pd.api.types.is_bool_dtype(series.dtype) or (not numeric and _is_boolean_pair(uniques)):
        low, high = sorted(uniques, key=lambda value: boolean_value(value) is True)
        return ColumnKind("boolean", f"two values, {_show(low)} and {_show(high)}, read as false/true")
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return ColumnKind("datetime", f"a {series.dtype} column")
    if isinstance(series.dtype, pd.CategoricalDtype):
        return ColumnKind("categorical", f"a pandas category column of {len(uniques)} values")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return _numeric_kind(series, name, distinct=len(uniques), given=given)
    return _string_kind(pd.Series(np.asarray(uniques, dtype=object)), name, distinct=len(uniques), given=given)


def _numeric_kind(series: pd.Series, name: object, *, distinct: int, given: int) -> ColumnKind:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    observed = values[np.isfinite(values)]
    integral = bool(np.all(np.mod(observed, 1) == 0))
    if integral and distinct == given >= _MIN_ID_ROWS:
        if named_like_id(name):
            return ColumnKind("identifier", f"a different whole number in each of the {given} rows, named like an id")
        if _numbering(observed):
            return ColumnKind("identifier", f"numbers the {given} rows (distinct whole numbers filling their range)")
    return ColumnKind("numeric", f"numbers, {distinct} distinct values")


def _numbering(values: np.ndarray) -> bool:
    """Whether distinct whole numbers number the rows: they fill most of their range (a row number, in any order;
    the training rows of a numbered table hold 80 % of the numbers, so their range is 1.25 times their count)."""
    span = float(values.max() - values.min() + 1)
    return span <= _NUMBERING_SPAN * len(values)


def _string_kind(uniques: pd.Series, name: object, *, distinct: int, given: int) -> ColumnKind:
    text = uniques.astype(str)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        if distinct == given >= _MIN_ID_ROWS and text.str.match(r"\s*0\d").any():
            return ColumnKind("identifier", f"a different code in each of the {given} rows, with leading zeros")
        return ColumnKind("numeric", f"numbers written as text, {distinct} distinct values")
    sample = text.iloc[:_SAMPLE]
    if sample.str.match(_DATE).mean() >= _DATE_SHARE and _parses_as_dates(sample):
        return ColumnKind("datetime", f"dates such as {_show(sample.iloc[0])}")
    words = float(sample.str.split().str.len().mean())
    all_distinct = distinct == given >= _MIN_ID_ROWS
    if (words >= _TEXT_WORDS and distinct >= _TEXT_DISTINCT * given) or (all_distinct and words >= 2):
        return ColumnKind("text", f"free text: {words:.1f} words per cell, {distinct} distinct of {given} cells")
    if all_distinct:
        return ColumnKind("identifier", f"a different value in each of the {given} rows")
    return ColumnKind("categorical", f"{distinct} distinct values")


def named_like_id(name: object) -> bool:
    """Whether a column name has an id word in it: ``id``, ``customer_id``, ``CustomerID``, ``row-key``, ``uuid``."""
    words = re.findall(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[0-9]+", str(name))
    return any(word.lower() in _ID_WORDS for word in words)


def _parses_as_dates(sample: pd.Series) -> bool:
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= _DATE_SHARE)


def _is_boolean_pair(uniques: object) -> bool:
    values = list(uniques)  # type: ignore[call-overload]
    if len(values) != 2:
        return False
    spelled = {str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v).strip().lower()
               for v in values}  # fmt: skip
    return any(spelled == pair for pair in _BOOLEAN_PAIRS)


def _blank(series: pd.Series) -> np.ndarray:
    """Cells that hold nothing: missing, or strings of only spaces."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return np.asarray(series.isna(), dtype=bool)
    return np.asarray(series.isna() | (series.astype(str).str.strip() == ""), dtype=bool)


def _show(value: object) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_column_kinds(kinds: Mapping[str, str], columns: Sequence[object], *, option: str = "column_kinds") -> None:
    """Refuse an override (already parsed by `parse_column_kinds`) that names a column that is not a feature.

    Raises:
        ConfigError: naming the unknown columns and the feature columns.
    """
    parse_column_kinds(kinds)
    names = {str(column) for column in columns}
    unknown = [name for name in kinds if str(name) not in names]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), sorted(names), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{option} names {format_examples(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not a "
            f"feature column; the feature columns are {format_examples(sorted(names), limit=12)}.{hint}"
        )


def parse_text_cols(given: Iterable[str] | None, kinds: Mapping[str, str]) -> tuple[str, ...] | None:
    """``text_cols`` as a tuple of column names; a name that ``kinds`` gives another kind is refused.

    Example:
        >>> parse_text_cols(["review"], {"zip": "categorical"})
        ('review',)
    """
    if given is None:
        return None
    names = (given,) if isinstance(given, str) else tuple(given)
    if not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"text_cols={given!r}; expected column names, e.g. ['review'] (CLI: --text-cols review).")
    clash = [name for name in names if kinds.get(name, "text") != "text"]
    if clash:
        raise ConfigError(
            f"text_cols names {format_examples(clash)} and column_kinds reads {clash[0]!r} as "
            f"{kinds[clash[0]]!r}; name each column in one of them."
        )
    return names


def parse_column_kinds(given: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """``{"zip": "categorical"}`` or ``["zip=categorical"]`` (the ``--column-kinds`` words) as a dict, kinds checked.

    Raises:
        ConfigError: an entry without ``=``, or an unknown kind (with the closest one).

    Example:
        >>> parse_column_kinds(["zip=categorical", "notes = ignored"])
        {'zip': 'categorical', 'notes': 'ignored'}
    """
    if given is None:
        return {}
    if isinstance(given, str):
        given = [given]
    if not isinstance(given, Mapping):
        pairs = [str(word).partition("=") for word in given]
        bad = [name for name, sep, kind in pairs if not sep or not name.strip() or not kind.strip()]
        if bad:
            raise ConfigError(
                f"column_kinds entry {bad[0]!r} is not NAME=KIND; write e.g. --column-kinds zip=categorical "
                f"notes=ignored (kinds: {', '.join(KINDS)})."
            )
        given = {name.strip(): kind.strip() for name, _, kind in pairs}
    kinds = {str(name): str(kind).lower() for name, kind in given.items()}
    for name, kind in kinds.items():
        if kind not in KINDS:
            close = difflib.get_close_matches(kind, KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"column_kinds gives {name!r} the kind {kind!r}; expected one of {', '.join(KINDS)}.{hint}"
            )
    return kinds
