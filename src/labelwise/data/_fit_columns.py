"""Fit one feature column's encoder from its kind: the kind `infer_column_kind` reads in its values, or the one
the user gave (``column_kinds=``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelwise.data._columns import CategoricalColumn, ColumnName, NumericColumn, bad_cells, numeric_values
from labelwise.data._kind_columns import BooleanColumn, DatetimeColumn, IgnoredColumn
from labelwise.data.column_kinds import ColumnKind, infer_column_kind
from labelwise.errors import DataError

__all__ = ["FeatureColumn", "fit_column"]

FeatureColumn = NumericColumn | CategoricalColumn | BooleanColumn | DatetimeColumn | IgnoredColumn
# A string column is "numbers with typos" rather than categories when at least this share of its cells are numbers.
_NUMERIC_SHARE = 0.9
_LEFT_OUT = {
    "identifier": "; left out: it names the row rather than describing it",
    "ignored": "; left out: nothing to learn from",
    "text": "; left out: labelwise does not read free text yet (pass column_kinds={name: 'categorical'} to one-hot it)",
}


def fit_column(series: pd.Series, name: ColumnName, *, kind: str | None = None) -> FeatureColumn:
    """Learn how one column becomes features, as its kind says.

    Args:
        series: the column's training values.
        name: the column.
        kind: the kind to read it as (`column_kinds.KINDS`); None: inferred from the values.

    Raises:
        DataError: a column of numbers with a few text cells (inferred), or cells the given kind cannot read.
    """
    decided = ColumnKind(kind, "as given in column_kinds") if kind else _inferred(series, name)
    if decided.kind == "numeric":
        return NumericColumn.fit(series, name, why=decided.why)
    if decided.kind == "categorical":
        return CategoricalColumn.fit(series, name, why=decided.why)
    if decided.kind == "boolean":
        return _checked(BooleanColumn.fit(series, name, why=decided.why), series)
    if decided.kind == "datetime":
        return _checked(DatetimeColumn.fit(series, name, why=decided.why), series)
    left_out = "; left out" if kind else _LEFT_OUT[decided.kind]
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


def _checked(column: BooleanColumn | DatetimeColumn, series: pd.Series) -> BooleanColumn | DatetimeColumn:
    """A kind given by the user must read every training cell; say which cells it cannot."""
    problem = column.write(series, np.empty((len(series), column.width), dtype=np.float32))
    if problem:
        raise DataError(f"column_kinds reads {column.name!r} as {column.kind}, but {problem}. Fix those cells or "
                        "choose another kind.")  # fmt: skip
    return column
