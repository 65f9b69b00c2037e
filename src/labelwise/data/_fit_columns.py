"""Fit one feature column's encoder from its kind: the kind `infer_column_kind` reads in its values, or the one
the user gave (``column_kinds=``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from labelwise.data._columns import (
    CategoricalColumn,
    ColumnName,
    NumericColumn,
    bad_cells,
    check_fit_frame,
    numeric_values,
)
from labelwise.data._kind_columns import BooleanColumn, DatetimeColumn, IgnoredColumn
from labelwise.data._text_column import TextColumn
from labelwise.data.column_kinds import ColumnKind, check_column_kinds, infer_column_kind
from labelwise.errors import DataError

__all__ = ["ColumnEncoder", "FeatureColumn", "TextFitter", "fit_column", "fit_columns"]

FeatureColumn = NumericColumn | CategoricalColumn | BooleanColumn | DatetimeColumn | IgnoredColumn
ColumnEncoder = FeatureColumn | TextColumn
_Text = TypeVar("_Text")
# (training cells, column name, why) -> the text column's encoder, when the model reads text its own way (a Hugging
# Face model's tokenizer, `labelwise.inputs.tokenized`); None: `TextColumn` (TF-IDF).
TextFitter = Callable[[pd.Series, str, str], _Text]
# A string column is "numbers with typos" rather than categories when at least this share of its cells are numbers.
_NUMERIC_SHARE = 0.9
_LEFT_OUT = {
    "identifier": "; left out: it names the row rather than describing it",
    "ignored": "; left out: nothing to learn from",
}


def fit_columns(
    frame: pd.DataFrame,
    *,
    columns: Sequence[ColumnName],
    kinds: Mapping[str, str] | None = None,
    text_cols: Sequence[str] | None = None,
    fit_text: TextFitter[_Text] | None = None,
) -> tuple[ColumnEncoder | _Text, ...]:
    """Each column's encoder, fitted on ``frame`` as its kind (inferred, or given in ``kinds``) says; text columns
    by ``fit_text`` when given.

    ``text_cols``, when given, are the only text columns: each is read as text, and another column that reads as
    text is left out, saying so.

    Raises:
        DataError: no columns or rows, a column the frame lacks, or values a column's kind cannot read.
        ConfigError: ``kinds`` or ``text_cols`` name an unknown kind or a column that is not a feature.
    """
    kinds = dict(kinds or {})
    check_fit_frame(frame, columns=columns)
    check_column_kinds(kinds, columns)
    if text_cols is not None:
        check_column_kinds(dict.fromkeys(text_cols, "text"), columns, option="text_cols")
        kinds |= dict.fromkeys(text_cols, "text")
    return tuple(
        fit_column(frame[name], name, kind=kinds.get(str(name)), text_cols=text_cols, fit_text=fit_text)
        for name in columns
    )


def fit_column(
    series: pd.Series,
    name: ColumnName,
    *,
    kind: str | None = None,
    text_cols: Sequence[str] | None = None,
    fit_text: TextFitter[_Text] | None = None,
) -> ColumnEncoder | _Text:
    """Learn how one column becomes features, as its kind says.

    Args:
        series: the column's training values.
        name: the column.
        kind: the kind to read it as (`column_kinds.KINDS`); None: inferred from the values.
        text_cols: when given, the only columns read as text: an unnamed column that reads as text is left out.
        fit_text: fits a text column; None: `TextColumn` (TF-IDF).

    Raises:
        DataError: a column of numbers with a few text cells (inferred), or cells the given kind cannot read.
    """
    if not kind:
        decided = _inferred(series, name)
        if decided.kind == "text" and text_cols is not None and str(name) not in text_cols:
            named = ", ".join(map(repr, text_cols)) or "no column"
            return IgnoredColumn(name=name, kind="text", why=f"{decided.why}; left out: --text-cols names {named}")
        return _fit_as(decided, series, name, given=False, fit_text=fit_text)
    try:
        return _fit_as(ColumnKind(kind, "as given (--column-kinds)"), series, name, given=True, fit_text=fit_text)
    except DataError as err:
        raise DataError(f"--column-kinds reads {name!r} as {kind}, but {err} Fix those cells or choose another "
                        "kind.") from None  # fmt: skip


def _fit_as(
    decided: ColumnKind, series: pd.Series, name: ColumnName, *, given: bool, fit_text: TextFitter[_Text] | None
) -> ColumnEncoder | _Text:
    if decided.kind == "numeric":
        return NumericColumn.fit(series, name, why=decided.why)
    if decided.kind == "categorical":
        return CategoricalColumn.fit(series, name, why=decided.why)
    if decided.kind == "boolean":
        return _checked(BooleanColumn.fit(series, name, why=decided.why), series)
    if decided.kind == "datetime":
        return _checked(DatetimeColumn.fit(series, name, why=decided.why), series)
    if decided.kind == "text" and fit_text is not None:
        return fit_text(series, str(name), decided.why)
    if decided.kind == "text":
        return TextColumn.fit(series, str(name), why=decided.why)
    left_out = "; left out" if given else _LEFT_OUT[decided.kind]
    return IgnoredColumn(name=name, kind=decided.kind, why=decided.why + left_out)


def _inferred(series: pd.Series, name: ColumnName) -> ColumnKind:
    _refuse_numbers_with_typos(series, name)
    return infer_column_kind(series, name)


def _refuse_numbers_with_typos(series: pd.Series, name: ColumnName) -> None:
    """A string column whose cells are nearly all numbers has a few typos; it is not a column of categories."""
    if not isinstance(series.dtype, pd.StringDtype | np.dtypes.ObjectDType):
        return
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values, bad_uniques = numeric_values(pd.Series(np.asarray(uniques, dtype=object), dtype=object))
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    good, bad = int(counts[np.isfinite(values)].sum()), int(counts[bad_uniques].sum())
    if good and bad and good / (good + bad) >= _NUMERIC_SHARE:
        rows = numeric_values(series)[1]
        raise DataError(
            f"feature column {bad_cells(series, rows, name=name)} holds text, while the other {good} cells hold "
            "numbers. Expected numbers or empty cells (they are filled with the median); fix or blank those cells, "
            f"or pass column_kinds={{{name!r}: 'categorical'}} to treat every value as a category."
        )


_Checked = TypeVar("_Checked", BooleanColumn, DatetimeColumn)


def _checked(column: _Checked, series: pd.Series) -> _Checked:
    """Every training cell must be readable as the column's kind; say which cells are not."""
    problem = column.write(series, np.empty((len(series), column.width), dtype=np.float32))
    if problem:
        raise DataError(f"{problem}.")
    return column
