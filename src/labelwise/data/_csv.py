"""Read CSV text for `labelwise.data.tables`: find the separator and the header, and refuse with a reason what
is not a UTF-8 CSV (binary or wide-encoded files, spreadsheets, archives that do not decompress, rows that do not
fit the header). Numbers written with decimal commas (``17,99`` in a ``;``-separated export) are read as numbers,
column by column; every command reads data through here, so all of them see the same values.
"""

from __future__ import annotations

import codecs
import lzma
import re
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from labelwise.data._columns import format_column_list
from labelwise.errors import DataError, format_rows

__all__ = ["SPREADSHEET_SUFFIXES", "check_unique_columns", "csv_columns", "read_csv"]

# pandas' default NA spellings (`pandas.read_csv`, `na_values`), repeated because we apply them per column:
# target columns are read without them, so "" stays "no label" and a class named "None" stays a class.
_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
_COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"})
SPREADSHEET_SUFFIXES = frozenset({".xls", ".xlsx", ".xlsm", ".ods"})
_SEPARATORS = (",", ";", "\t", "|")
_HEAD_BYTES = 1 << 16
# A number as a spreadsheet in a decimal-comma locale writes it: `17,99`, `-0,5`, `1.234,5` (points group thousands,
# three digits at a time), `1,5E-03`. Plain integers (`17`) match too, so a column may mix them with decimals.
# The share of `labelwise.data._columns._NUMERIC_SHARE`: at it, fit reads a text column as numbers with typos.
_NUMBERS_SHARE = 0.9
_DECIMAL_COMMA = re.compile(r"[+-]?(?:(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?|,\d+)(?:[eE][+-]?\d+)?")
# UTF-32 first: its little-endian mark starts with UTF-16's.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)  # fmt: skip
# What pandas' decompression raises on a file whose content does not match its suffix (gzip's BadGzipFile and
# bz2's "Invalid data stream" are OSErrors, a truncated stream an EOFError, a zip of several files a ValueError).
_FILE_ERRORS = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, lzma.LZMAError, tarfile.TarError)


def csv_columns(path: Path) -> list[str]:
    """Column names of a CSV (or TSV, or compressed CSV), reading only its first line."""
    _check_not_spreadsheet(path)
    names = _read_header(path, _separator(path))
    check_unique_columns(names, path)
    return names


def read_csv(path: Path, text_columns: Sequence[str]) -> pd.DataFrame:
    """The whole CSV; ``text_columns`` are read verbatim (see `labelwise.data.tables.read_table`), the other columns
    as numbers where they hold numbers, with decimal points or (in a file not separated by commas) decimal commas."""
    _check_not_spreadsheet(path)
    sep = _separator(path)
    names = _read_header(path, sep)
    check_unique_columns(names, path)
    na_values = {name: list(_NA_STRINGS) for name in names if name not in text_columns}
    # Target columns as text: pandas' own typing would turn the classes 1.0/2.0 into 1/2 and 007 into 7.
    text = {name: str for name in names if name in text_columns}
    try:
        # In a one-column file a blank line is an empty cell, not nothing: skipping it would shift every later row
        # onto the id of the row before (a blank text to predict on).
        frame = pd.read_csv(
            path, sep=sep, header=0, names=names, encoding="utf-8-sig", keep_default_na=False,
            na_values=na_values, dtype=text, low_memory=False, skip_blank_lines=len(names) > 1,
        )  # fmt: skip
    except UnicodeDecodeError as err:  # past the first 64 KiB, which `_read_head` checked
        raise _not_utf8(path, byte=err.object[err.start], offset=None) from err
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(
            f"cannot parse {str(path)!r} as a {sep!r}-separated CSV: {str(err).strip()}. Expected the same number of "
            "fields in every row and UTF-8 text; fix the file, or save it as Parquet."
        ) from err
    except _FILE_ERRORS as err:
        raise _unreadable(path, err) from err
    _check_rows_fit_header(frame, names, path)
    _check_no_repeated_header(frame, names, path)
    for name in frame.columns:
        if name in text_columns:
            frame[name] = typed_as_written(frame[name])
        elif sep != ",":
            frame[name] = _numbers_if_decimal_commas(frame[name])
    return frame


def check_unique_columns(names: list[str], path: Path) -> None:
    """Refuse a header that names a column twice (before anything picks a target among its names)."""
    counts = pd.Series(names, dtype=object).value_counts()
    duplicated = counts[counts > 1]
    if len(duplicated):
        found = ", ".join(f"{name!r} ({count} times)" for name, count in duplicated.items())
        raise DataError(
            f"{str(path)!r} has duplicate column names: {found}. Expected each column name once, so that "
            "`--target` and features are unambiguous; rename or drop the repeated columns."
        )


def _check_not_spreadsheet(path: Path) -> None:
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        raise DataError(
            f"{str(path)!r} is a spreadsheet; labelwise reads CSV and Parquet. Save the sheet as CSV "
            "(File > Save as > CSV UTF-8) and pass that file."
        )


def _separator(path: Path) -> str:
    # A compressed file is read through pandas' decompression only; its text cannot be sniffed beforehand.
    return "," if path.suffix.lower() in _COMPRESSED_SUFFIXES else _sniff_separator(_read_head(path), path)


def _read_head(path: Path) -> str:
    """The first 64 KiB as text, refusing binary data and text that is not UTF-8."""
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
    if not head:
        raise DataError(f"{str(path)!r} is empty (0 bytes). Expected a CSV with a header row; check the path.")
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            raise DataError(
                f"{str(path)!r} is {encoding} text (it starts with a {encoding} byte-order mark). Expected a UTF-8 "
                f"CSV; re-save it as 'CSV UTF-8', or convert it with `iconv -f {encoding} -t UTF-8`."
            )
    if b"\x00" in head:
        raise DataError(
            f"{str(path)!r} holds binary data (NUL bytes), not CSV text. Expected a UTF-8 CSV or a Parquet file; "
            "check that the right file was given."
        )
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as err:
        raise _not_utf8(path, byte=head[err.start], offset=err.start) from err


def _not_utf8(path: Path, *, byte: int, offset: int | None) -> DataError:
    where = f" at offset {offset}" if offset is not None else ""
    return DataError(
        f"{str(path)!r} is not UTF-8 text (byte {byte:#04x}{where}). Expected a UTF-8 CSV; re-save it as "
        "'CSV UTF-8', or convert it with `iconv -f cp1252 -t utf-8`."
    )


def _unreadable(path: Path, err: Exception) -> DataError:
    """A file the CSV reader could not even open or decompress."""
    suffix = path.suffix.lower()
    if isinstance(err, ImportError):  # pandas reads .zst only with the optional zstandard package
        return DataError(
            f"reading {str(path)!r} needs an optional package: {err}. Install it, or decompress the file and pass "
            "the CSV."
        )
    found = f"{type(err).__name__}: {str(err).strip()}"
    if suffix in _COMPRESSED_SUFFIXES:
        return DataError(
            f"cannot decompress {str(path)!r} ({found}). Expected a {suffix} archive holding one CSV, as its suffix "
            "says; check that the file is complete and really compressed that way, or decompress it and pass the CSV."
        )
    return DataError(f"cannot read {str(path)!r} ({found}). Expected a readable UTF-8 CSV file; check the path.")


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
    except UnicodeDecodeError as err:  # a compressed file, whose head was not checked
        raise _not_utf8(path, byte=err.object[err.start], offset=None) from err
    except pd.errors.ParserError as err:
        raise DataError(f"cannot read the header of {str(path)!r} ({err}). Expected UTF-8 CSV text.") from err
    except (*_FILE_ERRORS, ImportError) as err:
        raise _unreadable(path, err) from err
    return [name if name else f"Unnamed: {i}" for i, name in enumerate(row.iloc[0].tolist())]


def _check_rows_fit_header(frame: pd.DataFrame, names: list[str], path: Path) -> None:
    # When every row has k more fields than the header, pandas takes the first k fields as an unnamed row index
    # and shifts every column by k without a word (its convention for row names written without a header cell).
    if frame.index.equals(pd.RangeIndex(len(frame))):
        return
    extra = frame.index.nlevels
    raise DataError(
        f"the rows of {str(path)!r} have {extra} more field(s) than its header, which names {len(names)} columns "
        f"({format_column_list(names)}); read as they are, the values would shift {extra} column(s) to the left. "
        "Expected one header name per field; name the first column in the header, or remove the delimiter that "
        "ends every row."
    )


def _check_no_repeated_header(frame: pd.DataFrame, names: list[str], path: Path) -> None:
    # Files joined with `cat a.csv b.csv` keep the second header as a data row: its `label` cell would become a
    # class of one item and its other names text in number columns, each refused later as something else.
    if not len(frame):
        return
    repeated = np.ones(len(frame), dtype=bool)
    for j, name in enumerate(names):  # the first column rules out almost every row; later ones see few candidates
        if name.startswith("Unnamed: "):  # an empty header cell: any value in the repeated row
            continue
        candidates = np.flatnonzero(repeated)
        text = frame.iloc[candidates, j].astype("str").str.lstrip("\ufeff")
        repeated[candidates] = (text == name).to_numpy(dtype=bool, na_value=False)
        if not repeated.any():
            return
    rows = np.flatnonzero(repeated).tolist()
    raise DataError(
        f"data {format_rows(rows)} of {str(path)!r} {'holds' if len(rows) == 1 else 'hold'} the header again "
        f"({format_column_list(names)}), as when CSV files are joined one after the other. Expected the header once, "
        "in the first line; delete the repeated header rows (data rows count from 0, after the header)."
    )


def typed_as_written(column: pd.Series) -> pd.Series:
    """A target column read as text, as numbers or booleans where that keeps every label as it was written.

    Numbers only when every value is an integer written plainly (``3``, ``-2``: the number prints back the same);
    ``1.0``, ``007``, ``+1`` or ``1e3`` keep the column as text, so the classes come back as written. Numbers with
    a fraction (``0.5``) are numbers too: `infer_task` refuses them with the fix (bin them), rather than taking each
    value for a class. Blanks (an int target with a missing cell) stay missing. Booleans when every value is one of
    pandas' spellings of True/False, as pandas itself reads them.

    Example:
        >>> [typed_as_written(pd.Series(v, dtype=object)).tolist() for v in (["3", "-2"], ["1.0", "2.0"], ["007"])]
        [[3, -2], ['1.0', '2.0'], ['007']]
    """
    if not isinstance(column.dtype, pd.StringDtype | np.dtypes.ObjectDType):
        return column
    blank = (column.isna() | (column == "")).to_numpy(dtype=bool)
    written = pd.unique(column[~blank])
    if not len(written):
        return column
    if not blank.any() and all(value in _BOOLEANS for value in written):
        return column.map(_BOOLEANS).astype(bool)
    numbers = pd.to_numeric(pd.Series(written, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all():  # text (to_numeric's NaN), or "inf"
        return column
    fraction = numbers != np.round(numbers)
    if fraction.any() or all(_plain_integer(str(text), number) for text, number in zip(written, numbers, strict=True)):
        return pd.to_numeric(column.where(~blank), errors="coerce")
    return column


def _numbers_if_decimal_commas(column: pd.Series) -> pd.Series:
    """A feature column written with decimal commas (``17,99``, ``1.234,5``) as numbers; any other column as read.

    Decided per column, not for the file (pandas' ``decimal=","``): a ``;``-separated export may hold both kinds of
    column. A column some of whose cells are such numbers (one with a comma at least) but fewer than
    `_NUMBERS_SHARE` of them stays as written: a category column. Between that share and all, the numbers are
    converted and the other cells (``3.5``, ``12,5 kg``, ``?``) kept as written, so that training refuses them by
    name, as it refuses text in a column of decimal points; with every cell a number the column is float64.
    Only called for files not separated by commas, where a comma inside a value cannot be a field separator; target
    columns are never passed here, since a label such as ``1,5`` or a label list ``a,b`` is read as written.
    """
    if not isinstance(column.dtype, pd.StringDtype | np.dtypes.ObjectDType):
        return column  # pandas already read numbers (or nothing but missing cells)
    given = column.dropna()
    text = given.astype("str").str.strip()
    numbers = text.str.fullmatch(_DECIMAL_COMMA).to_numpy(dtype=bool)
    with_comma = text.str.contains(",", regex=False).to_numpy(dtype=bool)
    if not (numbers & with_comma).any() or numbers.mean() < _NUMBERS_SHARE:
        return column
    values = pd.to_numeric(text[numbers].str.replace(".", "", regex=False).str.replace(",", ".", regex=False))
    if numbers.all():
        return pd.Series(values, index=given.index, dtype=np.float64).reindex(column.index)
    mixed = column.astype(object)
    mixed.loc[values.index] = values.astype(np.float64).to_numpy(dtype=object)
    return mixed


# pandas' default spellings of booleans (`pandas.read_csv`'s true_values/false_values).
_BOOLEANS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}
# Beyond 2**53 a float no longer holds every integer, so the printed value would not be the one written.
_EXACT_INTEGERS = 2.0**53


def _plain_integer(text: str, number: float) -> bool:
    """Whether ``number`` prints as ``text`` (blanks around it aside): ``3`` yes; ``3.0``, ``03``, ``+3`` no."""
    return abs(number) < _EXACT_INTEGERS and str(int(number)) == text.strip()
