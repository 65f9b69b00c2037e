"""Tests of labelwise.data._csv: what the CSV reader refuses, and what it must still read."""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from labelwise.data.tables import read_columns, read_table
from labelwise.errors import DataError

_TABLE = "a,b,label\n1,2,x\n3,4,y\n"


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, _TABLE)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        pytest.param(
            "t.csv.gz",
            b"not gzip",
            r"cannot decompress .*BadGzipFile.*Expected a \.gz archive holding one "
            r"CSV.*or decompress it and pass the CSV",
            id="not-gzip",
        ),
        pytest.param("t.csv.gz", gzip.compress(_TABLE.encode())[:20], r"cannot decompress .*EOFError", id="cut-gzip"),
        pytest.param("t.bz2", b"not bz2", r"cannot decompress .*Expected a \.bz2 archive", id="not-bz2"),
        pytest.param("t.zip", b"not zip", r"cannot decompress .*BadZipFile", id="not-zip"),
        pytest.param("t.zip", _zip("a.csv", "b.csv"), r"cannot decompress .*Multiple files", id="two-files-in-a-zip"),
        pytest.param("t.csv", _TABLE.encode("utf-16"), r"is UTF-16 text .*iconv -f UTF-16 -t UTF-8", id="utf-16"),
        pytest.param("t.csv", _TABLE.encode("utf-32"), r"is UTF-32 text", id="utf-32"),
        pytest.param("t.xlsx", b"PK\x03\x04\x00\x00", r"is a spreadsheet.*Save the sheet as CSV", id="xlsx"),
        # Its name says spreadsheet, so Parquet's first bytes do not make it Parquet (hypothesis found it).
        pytest.param("t.xlsx", b"PAR1\x00", r"is a spreadsheet.*Save the sheet as CSV", id="xlsx-starting-as-parquet"),
        pytest.param(
            "t.csv",
            b"a,b\n1,2,3\n4,5,6\n",
            r"the rows of .* have 1 more field\(s\) than its header, which "
            r"names 2 columns .*name the first column in the header, or remove the delimiter",
            id="row-names",
        ),
        pytest.param("t.csv", b"a,b\n1,2,,\n4,5,,\n", r"have 2 more field\(s\)", id="trailing-delimiters"),
        pytest.param("t.csv", b"a,b\n1,2,3\n4,5\n", r"have 1 more field\(s\)", id="first-row-longer"),
        pytest.param(
            "t.csv",
            ("\ufeff" + _TABLE) * 2,
            r"data row 2 of .* holds the header again \('a', 'b', 'label'\)"
            r".*delete the repeated header rows",
            id="joined-exports",
        ),
        pytest.param(
            "t.csv",
            b"a,b\n1,2\n" + b"3,4\n" * 20_000 + b"\xe9,5\n",
            r"is not UTF-8 text \(byte 0xe9\)\. "
            r"Expected a UTF-8 CSV; re-save it",
            id="latin-1-past-the-head",
        ),
    ],
)
def test_read_table_refuses(tmp_path: Path, name: str, content: str | bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DataError, match=match):
        read_table(path)


@pytest.mark.parametrize("header", ["a,label,b,label", "label,a,label"], ids=["apart", "first"])
def test_a_repeated_target_name_is_a_duplicate_not_two_targets(tmp_path: Path, header: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(header + "\n" + ",".join("1" * (header.count(",") + 1)) + "\n")
    with pytest.raises(DataError, match=r"duplicate column names: 'label' \(2 times\)"):
        read_columns(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("t.csv.gz", gzip.compress(_TABLE.encode()), id="gzip"),
        pytest.param("t.bz2", bz2.compress(_TABLE.encode()), id="bz2"),
        pytest.param("t.zip", _zip("t.csv"), id="zip"),
        pytest.param("t.csv", "\ufeff" + _TABLE, id="utf-8-bom"),
        pytest.param("t.csv", "a,b,label\r\n1,2,x\r\n3,4,y\r\n", id="crlf"),
        pytest.param("t.csv", "a,b,label\n1,2,x\n3,4\n", id="a-short-row-is-a-missing-value"),
        pytest.param("t.csv", ",a,b,label\n0,1,2,x\n1,3,4,y\n", id="saved-index"),
    ],
)
def test_read_table_still_reads(tmp_path: Path, name: str, content: str | bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    frame = read_table(path, text_columns=["label"])
    assert list(frame.columns) == ["a", "b", "label"] and frame["a"].tolist() == [1, 3]
    assert isinstance(frame.index, pd.RangeIndex)


# Each case: a column's cells in a `;`-separated file, and what the reader gives (None = missing). The label
# column beside it is a target, read verbatim whatever it holds.
DECIMAL_COMMA_COLUMNS = [
    pytest.param(["17,99", "-0,5", "", "3"], [17.99, -0.5, None, 3.0], id="decimal-commas-and-integers"),
    pytest.param(["1.234,5", "12", ",5", "+2,0"], [1234.5, 12.0, 0.5, 2.0], id="thousands-points"),
    pytest.param(["1,5E-03", "2,5e2", "NA", "1.000.000"], [0.0015, 250.0, None, 1e6], id="exponents-and-NA"),
    pytest.param(["1,2", "3,4", "5", "6,7"], [1.2, 3.4, 5.0, 6.7], id="pairs-are-numbers-in-a-feature"),
    pytest.param(["1,5"] * 9 + ["12,5 kg"], [1.5] * 9 + ["12,5 kg"], id="one-typo-in-ten-kept-as-written"),
    pytest.param(["1,5"] * 8 + ["?", "?"], ["1,5"] * 8 + ["?", "?"], id="two-in-ten-not-numbers-is-text"),
    pytest.param(["1,2,3", "4,5", "6", "7"], ["1,2,3", "4,5", "6", "7"], id="two-commas-is-text"),
    pytest.param(["1,5", "red", "2", "3"], ["1,5", "red", "2", "3"], id="categories"),
    pytest.param(["1.5", "2.5", "", "4"], [1.5, 2.5, None, 4.0], id="decimal-points"),
]


def _cells(column: pd.Series) -> list[object]:
    return [None if pd.isna(value) else value for value in column]


@pytest.mark.parametrize(("cells", "expected"), DECIMAL_COMMA_COLUMNS)
@pytest.mark.parametrize("sep", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_a_column_of_decimal_commas_is_read_as_numbers(
    tmp_path: Path, sep: str, cells: list[str], expected: list[object]
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\n".join([f"x{sep}label", *(f"{cell}{sep}1,5" for cell in cells)]) + "\n")
    frame = read_table(path, text_columns=["label"])
    assert _cells(frame["x"]) == pytest.approx(expected)  # strings and None compare with ==
    assert frame["label"].tolist() == ["1,5"] * len(cells)  # a target: as written


def test_decimal_commas_are_decided_per_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("point;comma;color;label\n1.5;2,5;red;a,b\n2.25;1.000,0;blue;c\n")
    frame = read_table(path, text_columns=["label"])
    assert frame["point"].tolist() == [1.5, 2.25] and frame["comma"].tolist() == [2.5, 1000.0]
    assert frame["color"].tolist() == ["red", "blue"] and frame["label"].tolist() == ["a,b", "c"]


def test_a_comma_separated_file_keeps_quoted_commas_as_written(tmp_path: Path) -> None:
    # "1,5" quoted in a comma-separated file is as likely a thousands number or a list as a decimal comma.
    path = tmp_path / "t.csv"
    path.write_text('x,label\n"1,5",a\n"2,5",b\n')
    assert read_table(path, text_columns=["label"])["x"].tolist() == ["1,5", "2,5"]
