"""Read tables (CSV, Parquet) and turn their feature columns into one float tensor.

`read_table` reads a file the way a user expects and refuses, with a reason, what it cannot read.
`TablePreprocessor` learns per-column statistics on the training frame and applies them, vectorized, to
any later frame; it stores them as JSON so a saved model transforms new data exactly as at training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labelwise.data._columns import (
    CategoricalColumn,
    ColumnName,
    NumericColumn,
    bad_cells,
    category_keys,
    format_column_list,
)
from labelwise.data._csv import SPREADSHEET_SUFFIXES, check_unique_columns, csv_columns, read_csv
from labelwise.data._fit_columns import FeatureColumn, fit_columns
from labelwise.data._kind_columns import BooleanColumn, DatetimeColumn, IgnoredColumn
from labelwise.data.narrow import NARROW_ABOVE_BYTES, Widening, narrow_width, write_narrow
from labelwise.data.parquet_scan import PARQUET_SUFFIXES, check_parquet_schemas, parquet_files
from labelwise.errors import DataError, format_examples

if TYPE_CHECKING:
    import torch  # imported where the features become a tensor (`transform`): `inspect` must not load torch

__all__ = [
    "CategoricalColumn",
    "NumericColumn",
    "TablePreprocessor",
    "bad_values_error",
    "has_parquet_magic",
    "is_parquet_folder",
    "not_numbers_error",
    "read_columns",
    "read_table",
]


def read_table(path: str | Path, *, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (or TSV, or ``;``-separated) file, a Parquet file, or a folder of Parquet files.

    A first column with an empty header holding ``0 .. N-1`` is the index that ``DataFrame.to_csv`` writes by
    default; it is dropped so that it cannot become a feature.

    Args:
        path: the file or folder.
        text_columns: columns read verbatim (target columns): an empty cell stays ``""`` (multilabel "no label")
            and ``"NA"`` or ``"None"`` stay strings. A CSV column becomes numbers only when each prints back as
            written (``3`` but not ``3.0`` or ``007``; blanks then stay missing), see `labelwise.data._csv`.

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
    elif path.suffix.lower() in PARQUET_SUFFIXES or has_parquet_magic(path):
        frame = _fill_text(_read_parquet(path, folder=False), text_columns)
    else:
        frame = _drop_saved_index(read_csv(path, text_columns))
    check_unique_columns([str(c) for c in frame.columns], path)
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
    if path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES or has_parquet_magic(path):
        names = _parquet_columns(path)
        check_unique_columns(names, path)
        return names
    return csv_columns(path)


def is_parquet_folder(path: Path) -> bool:
    """Whether a folder holds a Parquet table: ``*.parquet`` files, or hive partitions (``key=value/`` folders)."""
    return any(
        (child.is_file() and child.suffix.lower() in PARQUET_SUFFIXES) or (child.is_dir() and "=" in child.name)
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
        raise _not_parquet(path, err) from err
    # pandas stores a non-default index as extra columns; they are not data.
    return [name for name in schema.names if not name.startswith("__index_level_")]


def has_parquet_magic(path: Path) -> bool:
    """A file that starts as Parquet does, unless its name says spreadsheet: that is refused as one, whatever its
    first bytes (a fuzzed ``data.xlsx`` starting ``PAR1`` was read as a broken Parquet file)."""
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        return False
    with path.open("rb") as file:
        return file.read(4) == b"PAR1"


def _read_parquet(path: Path, *, folder: bool) -> pd.DataFrame:
    if folder and not any(p.suffix.lower() in PARQUET_SUFFIXES for p in path.rglob("*")):
        raise DataError(
            f"the folder {str(path)!r} holds no Parquet files. Expected a CSV/Parquet file or a folder of "
            "*.parquet files (an image folder is read by `load_source`); pass the table file itself."
        )
    if folder:
        check_parquet_schemas(parquet_files(path))  # pyarrow would cast or null-fill a file that differs, silently
    check_unique_columns(_parquet_columns(path), path)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise _not_parquet(path, err) from err


def _not_parquet(path: Path, err: Exception) -> DataError:
    return DataError(
        f"cannot read {str(path)!r} as Parquet ({err}). Expected a valid Parquet file; re-export it, or save "
        "the table as CSV."
    )


def _fill_text(frame: pd.DataFrame, text_columns: Sequence[str]) -> pd.DataFrame:
    """Parquet stores real nulls; in a string target column they read as "" like an empty CSV cell."""
    for name in text_columns:
        if name in frame.columns and isinstance(frame[name].dtype, pd.StringDtype | np.dtypes.ObjectDType):
            frame[name] = frame[name].where(frame[name].notna(), "")
    return frame


def _drop_saved_index(frame: pd.DataFrame) -> pd.DataFrame:
    first = frame.columns[0] if frame.shape[1] else None
    if first == "Unnamed: 0" and len(frame) and frame[first].equals(pd.Series(np.arange(len(frame)))):
        return frame.drop(columns=first)
    return frame


def not_numbers_error(problems: Sequence[str]) -> DataError:
    """The error for numeric feature columns holding text; ``problems`` as `NumericColumn.values` describes them."""
    return DataError(
        f"numeric feature columns hold values that are not numbers: {'; '.join(problems)}. Expected numbers "
        "or empty cells (empty cells are filled with the training median); fix or blank those cells."
    )


def bad_values_error(problems: Sequence[tuple[str, str]]) -> DataError:
    """The error for cells their column's kind cannot read; ``problems`` are ``(kind, description)`` pairs."""
    if {kind for kind, _ in problems} == {"numeric"}:
        return not_numbers_error([problem for _, problem in problems])
    found = "; ".join(problem for _, problem in problems)
    return DataError(
        f"feature columns hold values their kind cannot read: {found}. Expected values like those at training, or "
        "empty cells (they are filled in); fix or blank those cells."
    )


@dataclass(frozen=True, kw_only=True)
class TablePreprocessor:
    """Turns feature columns into a float tensor, each as its kind says (`labelwise.data.column_kinds`).

    Layout, column by column in fit order: a numeric column gives ``(x - mean) / std`` (missing values take the
    fit-time median); a boolean column 0/1; a date column elapsed days and calendar cycles; a categorical column one
    0/1 feature per fit-time value, then an ``<unseen>`` bucket for values met only later (missing values take the
    most frequent one); identifiers, constant and empty columns write nothing. A column that had missing values at
    fit time is followed by a 0/1 ``:missing`` indicator.

    Each column's kind is inferred from its values (`infer_column_kind`), or given by ``kinds``: pass
    ``kinds={"code": "categorical"}`` to one-hot an integer code column.

    Example:
        >>> frame = pd.DataFrame({"age": [20.0, None, 40.0], "color": ["red", "blue", "red"]})
        >>> prep = TablePreprocessor.fit(frame, columns=["age", "color"])
        >>> prep.feature_names
        ['age', 'age:missing', 'color=blue', 'color=red', 'color=<unseen>']
        >>> prep.transform(frame).shape
        torch.Size([3, 5])
    """

    specs: tuple[FeatureColumn, ...]

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, *, columns: Sequence[ColumnName], kinds: Mapping[str, str] | None = None
    ) -> TablePreprocessor:
        """Learn each column's kind and statistics from ``frame``.

        Args:
            frame: the training table.
            columns: the feature columns, in the order their features are laid out.
            kinds: column name -> kind (`column_kinds.KINDS`) for columns whose inferred kind is not wanted.

        Text columns are refused: `labelwise.inputs` reads them, from tables in memory.

        Raises:
            DataError: no columns or rows, a column the frame lacks, a string column of numbers with a few
                non-numeric cells, or cells a given kind cannot read.
            ConfigError: ``kinds`` names an unknown kind or a column that is not a feature.
        """
        encoders = fit_columns(frame, columns=columns, kinds=kinds)
        texts = [str(e.name) for e in encoders if e.group != "features"]
        if texts:  # streamed tables: text columns are read by `labelwise.inputs`, which needs the rows in memory
            raise DataError(
                f"{format_column_list(texts)} read as free text, which labelwise reads from tables in memory only "
                "(a text column's vocabulary is fitted on every training row). Pass stream='off' (--stream off), "
                f"or column_kinds={{{texts[0]!r}: 'ignored'}} to leave it out."
            )
        return cls(specs=tuple(e for e in encoders if e.group == "features"))  # type: ignore[misc]

    @property
    def columns(self) -> list[ColumnName]:
        """The input columns, in fit order."""
        return [spec.name for spec in self.specs]

    @property
    def num_features(self) -> int:
        """Width F of `transform`'s output."""
        return sum(spec.width for spec in self.specs)

    @property
    def widening(self) -> Widening | None:
        """Narrow rows to `features`' wide ones, batch by batch (`labelwise.data.narrow`); None: they are the same."""
        return Widening.of(self.specs)

    def narrow_pays(self, num_rows: int) -> bool:
        """Whether ``num_rows`` rows are better kept narrow: their wide features would pass `NARROW_ABOVE_BYTES`."""
        return self.widening is not None and 4 * num_rows * self.num_features > NARROW_ABOVE_BYTES

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
        self.check_columns(frame)
        import torch

        return torch.from_numpy(self.features(frame, num_rows=len(frame)))

    def features(self, columns: Mapping[ColumnName, Any], *, num_rows: int, narrow: bool = False) -> np.ndarray:
        """`transform`'s ``(num_rows, num_features)`` float32, as numpy, from the fitted columns of a frame or a
        mapping of them: a column as a Series, or a numeric one as a float64 array with NaN for missing.
        ``narrow``: the narrow form instead, which `widening` turns into those features batch by batch.

        Raises:
            DataError: as `transform`, for values a column's kind cannot read.
        """
        width = sum(narrow_width(spec) for spec in self.specs) if narrow else self.num_features
        out = np.empty((num_rows, width), dtype=np.float32)
        problems: list[tuple[str, str]] = []
        start = 0
        for spec in self.specs:
            width = narrow_width(spec) if narrow else spec.width
            if width:
                column, into = columns[spec.name], out[:, start : start + width]
                problem = write_narrow(spec, column, into) if narrow else spec.write(column, into)
                if problem:
                    problems.append((spec.kind, problem))
            start += width
        if problems:
            raise bad_values_error(problems)
        return out

    def unseen(self, frame: pd.DataFrame) -> list[str]:
        """Categorical cells of ``frame`` holding a value training never saw (read as ``<unseen>``), per column:
        ``["'color' in rows 3, 7 ('purple', 5)"]``; empty when there are none."""
        found = []
        for spec in self.specs:
            if isinstance(spec, CategoricalColumn) and spec.name in frame.columns:
                codes, keys = category_keys(frame[spec.name])
                known = set(spec.categories) | set(spec.counts)
                new = np.array([key not in known for key in keys] + [False])
                rows = np.flatnonzero(new[np.where(codes < 0, len(keys), codes)])
                if rows.size:
                    found.append(bad_cells(frame[spec.name], rows, name=spec.name))
        return found

    @property
    def required(self) -> list[ColumnName]:
        """The columns data to predict on must have: all but those the model leaves out."""
        return [spec.name for spec in self.specs if spec.width]

    def check_columns(self, frame: pd.DataFrame) -> None:
        """Raise `DataError` naming every fitted column that ``frame`` lacks."""
        present = set(frame.columns)
        missing = [name for name in self.required if name not in present]
        if missing:
            raise DataError(
                f"the table lacks {len(missing)} feature column(s) the model was trained on: {format_examples(missing)}"
                f" (it has {format_column_list(frame.columns)}). Expected all of {format_examples(self.required)}; "
                "add the missing columns (empty cells are imputed) or retrain without them."
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {"columns": [spec.to_dict() for spec in self.specs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TablePreprocessor:
        """Rebuild a preprocessor written by `to_dict`."""
        readers: dict[str, Any] = {"numeric": NumericColumn, "categorical": CategoricalColumn, "boolean": BooleanColumn,
                   "datetime": DatetimeColumn, "ignored": IgnoredColumn}  # fmt: skip
        unknown = [item.get("type") for item in data["columns"] if item.get("type") not in readers]
        if unknown:
            raise DataError(
                f"unknown column type {unknown[0]!r} in a stored preprocessor; expected one of {list(readers)}."
            )
        return cls(specs=tuple(readers[item["type"]].from_dict(item) for item in data["columns"]))
