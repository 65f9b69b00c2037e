"""Scan a Parquet file or folder from its footers: files, row groups, row counts, one schema; read one row group.

A leaf of `labelwise.data`: `labelwise.data.tables` (reading a Parquet folder into memory), `labelwise.data.stream_rows`
(the validation rule) and `labelwise.data.streaming` (the training stream) all read Parquet through it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from labelwise.errors import DataError, format_examples

__all__ = [
    "PARQUET_SUFFIXES",
    "ParquetFile",
    "ParquetScan",
    "check_parquet_schemas",
    "parquet_files",
    "read_unit",
    "scan_parquet",
]

PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})
# Rows decoded from Parquet at a time: bounds memory even for a file written as one huge row group.
_READ_ROWS = 16_384


@dataclass(frozen=True)
class ParquetFile:
    """One file of a scan: its path, rows per row group, and uncompressed bytes (from the footer)."""

    path: Path
    row_groups: tuple[int, ...]
    uncompressed_bytes: int

    @property
    def num_rows(self) -> int:
        """Rows in the file."""
        return sum(self.row_groups)


@dataclass(frozen=True)
class ParquetScan:
    """What the footers of a Parquet file or folder say, no data read.

    Attributes:
        root: the path given.
        files: the files in sorted path order; global row numbers count through them in this order.
        columns: the column names (pandas index columns left out).
    """

    root: Path
    files: tuple[ParquetFile, ...]
    columns: tuple[str, ...]

    @property
    def num_rows(self) -> int:
        """Rows in all files."""
        return sum(f.num_rows for f in self.files)

    @property
    def uncompressed_bytes(self) -> int:
        """Uncompressed size of all row groups, as the footers state it."""
        return sum(f.uncompressed_bytes for f in self.files)

    def units(self) -> list[tuple[int, int, int]]:
        """Work units, one per row group: ``(file index, row group index, global row number of its first row)``."""
        out, start = [], 0
        for file_index, file in enumerate(self.files):
            for group, rows in enumerate(file.row_groups):
                out.append((file_index, group, start))
                start += rows
        return out

    def unit_rows(self) -> np.ndarray:
        """Rows per work unit, in `units` order."""
        return np.array([rows for file in self.files for rows in file.row_groups], dtype=np.int64)


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a file or folder (recursively, sorted), or `DataError` when there are none."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES)
    if not files:
        raise DataError(
            f"the folder {str(path)!r} holds no Parquet files. Expected a Parquet file or a folder of *.parquet "
            "files; pass the table itself."
        )
    return files


def _schema_of(file: Path) -> dict[str, str]:
    try:
        schema = pq.read_schema(file)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise DataError(
            f"cannot read {str(file)!r} as Parquet ({err}). Expected a valid Parquet file; re-export it, or move it "
            "out of the folder."
        ) from err
    return {f.name: str(f.type) for f in schema if not f.name.startswith("__index_level_")}


def _schema_difference(first: dict[str, str], other: dict[str, str]) -> str:
    parts = []
    if missing := [name for name in first if name not in other]:
        parts.append(f"it lacks column(s) {format_examples(missing)}")
    if extra := [name for name in other if name not in first]:
        parts.append(f"it has extra column(s) {format_examples(extra)}")
    retyped = [name for name, kind in first.items() if other.get(name, kind) != kind]
    parts.extend(f"column {name!r} is {other[name]} there but {first[name]} in the first" for name in retyped[:5])
    return "; ".join(parts)


def check_parquet_schemas(files: Sequence[Path]) -> dict[str, str]:
    """Check that every file holds the first file's columns with the same types; return ``{column: type}``.

    Raises:
        DataError: naming the first file that differs, what differs, and how many more files differ.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"x": [1.0], "n": [1]}).to_parquet(folder / "a.parquet")
        >>> check_parquet_schemas([folder / "a.parquet"])
        {'x': 'double', 'n': 'int64'}
    """
    first = _schema_of(files[0])
    bad = [(file, diff) for file in files[1:] if (diff := _schema_difference(first, _schema_of(file)))]
    if bad:
        file, diff = bad[0]
        more = f" ({len(bad) - 1} more file(s) differ too)" if len(bad) > 1 else ""
        raise DataError(
            f"the Parquet file {str(file)!r} does not match the first file {str(files[0])!r}: {diff}{more}. Expected "
            "every file of a Parquet folder to hold the same columns with the same types; rewrite that file with "
            "the first file's schema, or move it out of the folder."
        )
    return first


def scan_parquet(path: str | Path) -> ParquetScan:
    """Scan a Parquet file or folder: files, row groups and row counts from the footers, schemas checked.

    Raises:
        DataError: no such path, no Parquet files, an unreadable file, files whose columns or types differ.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for i in range(2):
        ...     pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]}).to_parquet(folder / f"part-{i}.parquet")
        >>> scan = scan_parquet(folder)
        >>> scan.num_rows, scan.columns, len(scan.units())
        (4, ('x', 'y'), 2)
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"no file or folder at {str(path)!r}. Expected a Parquet file or folder; check the path.")
    files = parquet_files(path)
    columns = check_parquet_schemas(files)
    infos = []
    for file in files:
        meta = pq.ParquetFile(file).metadata
        groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
        infos.append(ParquetFile(file, tuple(g.num_rows for g in groups), sum(g.total_byte_size for g in groups)))
    return ParquetScan(path, tuple(infos), tuple(columns))


def read_unit(scan: ParquetScan, unit: tuple[int, int, int], *, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
    """The rows of one work unit as frames of at most ``_READ_ROWS`` rows; the index holds global row numbers."""
    file_index, group, start = unit
    reader = pq.ParquetFile(scan.files[file_index].path)
    for batch in reader.iter_batches(batch_size=_READ_ROWS, row_groups=[group], columns=list(columns)):
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame
