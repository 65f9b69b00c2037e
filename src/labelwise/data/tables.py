"""Read tables (CSV, Parquet) and turn their feature columns into one float tensor.

`read_table` reads a file the way a user expects and refuses, with a reason, what it cannot read.
`TablePreprocessor` learns per-column statistics on the training frame and applies them, vectorized, to
any later frame; it stores them as JSON so a saved model transforms new data exactly as at training.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from labelwise.data._columns import (
    CategoricalColumn,
    ColumnName,
    NumericColumn,
    check_fit_frame,
    fit_column,
    format_column_list,
)
from labelwise.errors import DataError, format_examples

__all__ = ["CategoricalColumn", "NumericColumn", "TablePreprocessor", "is_parquet_folder", "read_columns", "read_table"]

# pandas' default NA spellings (`pandas.read_csv`, `na_values`), repeated because we apply them per column:
# target columns are read without them, so "" stays "no label" and a class named "None" stays a class.
_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})
_COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"})
_SPREADSHEET_SUFFIXES = frozenset({".xls", ".xlsx", ".xlsm", ".ods"})
_SEPARATORS = (",", ";", "\t", "|")
_HEAD_BYTES = 1 << 16


def read_table(path: str | Path, *, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (or TSV, or ``;``-separated) file, a Parquet file, or a folder of Parquet files.

    A first column with an empty header holding ``0 .. N-1`` is the index that ``DataFrame.to_csv`` writes by
    default; it is dropped so that it cannot become a feature.

    Args:
        path: the file or folder.
        text_columns: columns read verbatim (target columns): an empty cell stays ``""`` (multilabel "no label")
            and ``"NA"`` or ``"None"`` stay strings. A column holding only numbers and blanks is still numeric.

    Returns:
        the table, one row per item, columns as in the file.

    Raises:
        DataError: a missing path, an unreadable or binary file, an empty table, duplicate column names.

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = file.write_text("x,label\\n1,a b\\n2,\\n")
        >>> read_table(file, text_columns=["label"])["label"].tolist()
        ['a b', '']
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"no file or folder at {str(path)!r}. Expected a CSV or Parquet file; check the path.")
    if path.is_dir():
        frame = _fill_text(_read_parquet(path, folder=True), text_columns)
    elif path.suffix.lower() in _PARQUET_SUFFIXES or _has_parquet_magic(path):
        frame = _fill_text(_read_parquet(path, folder=False), text_columns)
    else:
        frame = _drop_saved_index(_read_csv(path, text_columns))
    _check_duplicates([str(c) for c in frame.columns], path)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataError(
            f"{str(path)!r} holds no rows (columns: {format_examples([str(c) for c in frame.columns]) or 'none'}). "
            "Expected a header row and at least one data row; check that the right file was given."
        )
    return frame


def read_columns(path: str | Path) -> list[str]:
    """The column names of a table, reading only its header (CSV) or schema (Parquet).

    Raises:
        DataError: as `read_table`, for a missing path or a file that is not a readable table.

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = file.write_text("x;label\\n1;a\\n")
        >>> read_columns(file)
        ['x', 'label']
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"no file or folder at {str(path)!r}. Expected a CSV or Parquet file; check the path.")
    if path.is_dir() or path.suffix.lower() in _PARQUET_SUFFIXES or _has_parquet_magic(path):
        return _parquet_columns(path)
    if path.suffix.lower() in _COMPRESSED_SUFFIXES:
        return _read_header(path, ",")
    return _read_header(path, _sniff_separator(_read_head(path), path))


def is_parquet_folder(path: Path) -> bool:
    """Whether a folder holds a Parquet table: ``*.parquet`` files, or hive partitions (``key=value/`` folders)."""
    return any(
        (child.is_file() and child.suffix.lower() in _PARQUET_SUFFIXES) or (child.is_dir() and "=" in child.name)
        for child in path.iterdir()
    )


def _parquet_columns(path: Path) -> list[str]:
    """Column names from the Parquet footer(s), without reading the data."""
    import pyarrow.dataset as ds  # deferred: only Parquet needs pyarrow's dataset layer
    import pyarrow.parquet as pq

    try:
        schema = (
            ds.dataset(path, format="parquet", partitioning="hive").schema if path.is_dir() else pq.read_schema(path)
        )
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise DataError(
            f"cannot read {str(path)!r} as Parquet ({err}). Expected a valid Parquet file; re-export it, or save "
            "the table as CSV."
        ) from err
    # pandas stores a non-default index as extra columns; they are not data.
    return [name for name in schema.names if not name.startswith("__index_level_")]


def _has_parquet_magic(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == b"PAR1"


def _read_parquet(path: Path, *, folder: bool) -> pd.DataFrame:
    if folder and not any(p.suffix.lower() in _PARQUET_SUFFIXES for p in path.rglob("*")):
        raise DataError(
            f"the folder {str(path)!r} holds no Parquet files. Expected a CSV/Parquet file or a folder of "
            "*.parquet files (an image folder is read by `load_source`); pass the table file itself."
        )
    _check_duplicates(_parquet_columns(path), path)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise DataError(
            f"cannot read {str(path)!r} as Parquet ({err}). Expected a valid Parquet file; re-export it, or save "
            "the table as CSV."
        ) from err


def _fill_text(frame: pd.DataFrame, text_columns: Sequence[str]) -> pd.DataFrame:
    """Parquet stores real nulls; in a string target column they read as "" like an empty CSV cell."""
    for name in text_columns:
        if name in frame.columns and isinstance(frame[name].dtype, pd.StringDtype | np.dtypes.ObjectDType):
            frame[name] = frame[name].where(frame[name].notna(), "")
    return frame


def _read_csv(path: Path, text_columns: Sequence[str]) -> pd.DataFrame:
    if path.suffix.lower() in _SPREADSHEET_SUFFIXES:
        raise DataError(
            f"{str(path)!r} is a spreadsheet; labelwise reads CSV and Parquet. Save the sheet as CSV "
            "(File > Save as > CSV UTF-8) and pass that file."
        )
    compressed = path.suffix.lower() in _COMPRESSED_SUFFIXES
    sep = "," if compressed else _sniff_separator(_read_head(path), path)
    names = _read_header(path, sep)
    _check_duplicates(names, path)
    na_values = {name: list(_NA_STRINGS) for name in names if name not in text_columns}
    try:
        frame = pd.read_csv(
            path, sep=sep, header=0, names=names, encoding="utf-8-sig", keep_default_na=False,
            na_values=na_values, low_memory=False,
        )  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(
            f"cannot parse {str(path)!r} as a {sep!r}-separated CSV: {str(err).strip()}. Expected the same number of "
            "fields in every row and UTF-8 text; fix the file, or save it as Parquet."
        ) from err
    for name in text_columns:
        if name in frame.columns:
            frame[name] = _numeric_if_only_numbers(frame[name])
    return frame


def _read_head(path: Path) -> str:
    """The first 64 KiB as text, refusing binary data and text that is not UTF-8."""
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
    if not head:
        raise DataError(f"{str(path)!r} is empty (0 bytes). Expected a CSV with a header row; check the path.")
    if b"\x00" in head:
        raise DataError(
            f"{str(path)!r} holds binary data (NUL bytes), not CSV text. Expected a UTF-8 CSV or a Parquet file; "
            "check that the right file was given."
        )
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{str(path)!r} is not UTF-8 text (byte {head[err.start]:#04x} at offset {err.start}). Expected a UTF-8 "
            "CSV; re-save it as 'CSV UTF-8', or convert it with `iconv -f cp1252 -t utf-8`."
        ) from err


def _sniff_separator(head: str, path: Path) -> str:
    """The separator that occurs most often in the header line (``,`` unless ``;``, tab or ``|`` beats it)."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    first_line = head.splitlines()[0] if head.splitlines() else ""
    counts = {sep: first_line.count(sep) for sep in _SEPARATORS}
    best = max(_SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _read_header(path: Path, sep: str) -> list[str]:
    """Column names as written; empty names get pandas' ``Unnamed: i`` spelling."""
    try:
        row = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as err:
        raise DataError(
            f"{str(path)!r} holds no header row. Expected a CSV with column names in its first line."
        ) from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the header of {str(path)!r} ({err}). Expected UTF-8 CSV text.") from err
    return [name if name else f"Unnamed: {i}" for i, name in enumerate(row.iloc[0].tolist())]


def _check_duplicates(names: list[str], path: Path) -> None:
    counts = pd.Series(names).value_counts()
    duplicated = counts[counts > 1]
    if len(duplicated):
        found = ", ".join(f"{name!r} ({count} times)" for name, count in duplicated.items())
        raise DataError(
            f"{str(path)!r} has duplicate column names: {found}. Expected each column name once, so that "
            "`--target` and features are unambiguous; rename or drop the repeated columns."
        )


def _numeric_if_only_numbers(column: pd.Series) -> pd.Series:
    """A verbatim-read column of numbers and blanks (an int target with a missing cell) goes back to numbers."""
    if not isinstance(column.dtype, pd.StringDtype | np.dtypes.ObjectDType):
        return column
    numbers = pd.to_numeric(column.where(column != ""), errors="coerce")
    if numbers.notna().any() and (numbers.notna() | (column == "") | column.isna()).all():
        return numbers
    return column


def _drop_saved_index(frame: pd.DataFrame) -> pd.DataFrame:
    first = frame.columns[0] if frame.shape[1] else None
    if first == "Unnamed: 0" and len(frame) and frame[first].equals(pd.Series(np.arange(len(frame)))):
        return frame.drop(columns=first)
    return frame


@dataclass(frozen=True, kw_only=True)
class TablePreprocessor:
    """Turns feature columns into a float tensor: numeric columns standardized, categorical ones one-hot.

    Layout, column by column in fit order: a numeric column gives ``(x - mean) / std`` (missing values take the
    fit-time median); a categorical column gives one 0/1 feature per fit-time category, then an ``<unseen>`` bucket
    for values met only later (missing values take the most frequent category). A column that had missing values
    at fit time is followed by a 0/1 ``:missing`` indicator.

    Which columns are categorical: strings, booleans and pandas ``category`` columns; integer and float columns are
    numeric (their order means something in most tables, and one-hot on an ID-like integer explodes). Pass
    ``categorical=[...]`` to `fit` to one-hot an integer code column. A string column whose non-missing values are all
    numbers is numeric. At most ``max_categories`` most frequent categories get their own feature; rarer ones share
    the ``<unseen>`` bucket.

    Example:
        >>> frame = pd.DataFrame({"age": [20.0, None, 40.0], "color": ["red", "blue", "red"]})
        >>> prep = TablePreprocessor.fit(frame, columns=["age", "color"])
        >>> prep.feature_names
        ['age', 'age:missing', 'color=blue', 'color=red', 'color=<unseen>']
        >>> prep.transform(frame).shape
        torch.Size([3, 5])
    """

    specs: tuple[NumericColumn | CategoricalColumn, ...]

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        *,
        columns: Sequence[ColumnName],
        categorical: Sequence[ColumnName] = (),
        max_categories: int = 64,
    ) -> TablePreprocessor:
        """Learn each column's statistics from ``frame``.

        Args:
            frame: the training table.
            columns: the feature columns, in the order their features are laid out.
            categorical: columns to one-hot even though they hold numbers.
            max_categories: how many most frequent categories of one column get their own feature.

        Raises:
            DataError: no columns or rows, a column the frame lacks, a column of an unsupported type, or a string
                column of numbers with a few non-numeric cells.
        """
        check_fit_frame(frame, columns=columns, categorical=categorical)
        force = set(categorical)
        specs = tuple(
            fit_column(frame[name], name, categorical=name in force, max_categories=max_categories) for name in columns
        )
        return cls(specs=specs)

    @property
    def columns(self) -> list[ColumnName]:
        """The input columns, in fit order."""
        return [spec.name for spec in self.specs]

    @property
    def num_features(self) -> int:
        """Width F of `transform`'s output."""
        return sum(spec.width for spec in self.specs)

    @property
    def feature_names(self) -> list[str]:
        """One name per output feature (``age``, ``age:missing``, ``color=red``, ``color=<unseen>``)."""
        return [name for spec in self.specs for name in spec.feature_names]

    def transform(self, frame: pd.DataFrame) -> torch.Tensor:
        """Apply the fitted statistics; extra columns in ``frame`` are ignored.

        Returns:
            ``(N, num_features)`` float32, rows in ``frame``'s order.

        Raises:
            DataError: ``frame`` lacks fitted columns, or numeric columns hold non-numeric values (all such columns and
                rows are named at once).
        """
        self._check_has_columns(frame)
        out = np.empty((len(frame), self.num_features), dtype=np.float32)
        problems: list[str] = []
        start = 0
        for spec in self.specs:
            problem = spec.write(frame[spec.name], out[:, start : start + spec.width])
            if problem:
                problems.append(problem)
            start += spec.width
        if problems:
            raise DataError(
                f"numeric feature columns hold values that are not numbers: {'; '.join(problems)}. Expected numbers "
                "or empty cells (empty cells are filled with the training median); fix or blank those cells."
            )
        return torch.from_numpy(out)

    def _check_has_columns(self, frame: pd.DataFrame) -> None:
        present = set(frame.columns)
        missing = [name for name in self.columns if name not in present]
        if missing:
            raise DataError(
                f"the table lacks {len(missing)} feature column(s) the model was trained on: {format_examples(missing)}"
                f" (it has {format_column_list(frame.columns)}). Expected all of {format_examples(self.columns)}; "
                "add the missing columns (empty cells are imputed) or retrain without them."
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {"columns": [spec.to_dict() for spec in self.specs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TablePreprocessor:
        """Rebuild a preprocessor written by `to_dict`."""
        specs: list[NumericColumn | CategoricalColumn] = []
        for item in data["columns"]:
            kind = item.get("type")
            if kind == "numeric":
                specs.append(NumericColumn.from_dict(item))
            elif kind == "categorical":
                specs.append(CategoricalColumn.from_dict(item))
            else:
                raise DataError(f"unknown column type {kind!r} in a stored preprocessor; expected numeric/categorical.")
        return cls(specs=tuple(specs))
