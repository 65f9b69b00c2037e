"""Tests of labelwise.data.tables: reading CSV/Parquet and the feature preprocessor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import OneHotEncoder

from labelwise.data._columns import NumericColumn, piecewise_linear
from labelwise.data.tables import TablePreprocessor, read_columns, read_table
from labelwise.errors import DataError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.5, 31.0, 47.25, 52.0, 38.0],
            "city": ["Oslo", "Lima", "Oslo", "Pune", "Lima"],
            "label": ["yes", "no", "yes", "no", "yes"],
        }
    )


# -- read_table ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "tsv", "semicolon", "parquet", "parquet-folder", "gzip"])
def test_read_table_formats_round_trip(tmp_path: Path, fmt: str) -> None:
    frame = _frame()
    if fmt == "csv":
        path = tmp_path / "t.csv"
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        path = tmp_path / "t.tsv"
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "semicolon":
        path = tmp_path / "t.csv"
        frame.to_csv(path, index=False, sep=";")
    elif fmt == "parquet":
        path = tmp_path / "t.parquet"
        frame.to_parquet(path, index=False)
    elif fmt == "gzip":
        path = tmp_path / "t.csv.gz"
        frame.to_csv(path, index=False)
    else:
        path = tmp_path / "parts"
        path.mkdir()
        frame.iloc[:3].to_parquet(path / "part-0.parquet", index=False)
        frame.iloc[3:].to_parquet(path / "part-1.parquet", index=False)
    pd.testing.assert_frame_equal(read_table(path), frame, check_dtype=False)
    assert read_columns(path) == ["age", "city", "label"]


def test_read_table_strips_bom_and_drops_saved_index(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame().to_csv(path, encoding="utf-8-sig")  # index=True: an unnamed 0..N-1 first column
    frame = read_table(path)
    assert list(frame.columns) == ["age", "city", "label"]
    pd.testing.assert_frame_equal(frame, _frame(), check_dtype=False)


def test_read_table_keeps_an_unnamed_column_that_is_not_an_index(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(",x\n5,1\n7,2\n")
    assert list(read_table(path).columns) == ["Unnamed: 0", "x"]


def test_read_table_missing_values_and_text_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,color,tags,code\n1.5,red,cat dog,1\n,NA,,\n3.0,,None,0\n")
    frame = read_table(path, text_columns=["tags", "code"])
    assert np.isnan(frame["x"][1]) and frame["color"].isna().tolist() == [False, True, True]
    assert frame["tags"].tolist() == ["cat dog", "", "None"]  # "" = no label; a class named "None" stays
    assert pd.api.types.is_float_dtype(frame["code"]) and np.isnan(frame["code"][1])  # numbers and blanks: numeric


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        pytest.param(["3", "-2", "3"], [3, -2, 3], id="plain-ints"),
        pytest.param(["1", "0", ""], [1.0, 0.0, np.nan], id="ints-and-a-blank"),
        pytest.param(["1.0", "2.0", "1.0"], ["1.0", "2.0", "1.0"], id="integral-floats"),
        pytest.param(["007", "12", "007"], ["007", "12", "007"], id="leading-zeros"),
        pytest.param(["+1", "-1", "+1"], ["+1", "-1", "+1"], id="plus-sign"),
        pytest.param(["1e3", "2e3", "1e3"], ["1e3", "2e3", "1e3"], id="exponent"),
        pytest.param(["9007199254740993", "1", "1"], ["9007199254740993", "1", "1"], id="beyond-float"),
        pytest.param(["0.5", "1.5", "2"], [0.5, 1.5, 2.0], id="fractions-stay-numbers"),
        pytest.param(["True", "false", "TRUE"], [True, False, True], id="booleans"),
        pytest.param(["yes", "no", "yes"], ["yes", "no", "yes"], id="text"),
    ],
)
def test_read_table_keeps_target_values_as_written(tmp_path: Path, cells: list[str], expected: list[object]) -> None:
    # A target column becomes numbers only when each number prints as it was written; fractions stay numbers so
    # that infer_task refuses them with its "bin the values" fix instead of taking each value for a class.
    path = tmp_path / "t.csv"
    path.write_text("x,label\n" + "".join(f"{i},{cell}\n" for i, cell in enumerate(cells)))
    read = read_table(path, text_columns=["label"])["label"].tolist()
    assert [type(v) for v in read] == [type(v) for v in expected]  # 1 is not "1", True is not "True"
    np.testing.assert_equal(read, expected)


def test_read_table_parquet_text_columns_read_nulls_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "tags": ["a b", None]}).to_parquet(path)
    assert read_table(path, text_columns=["tags"])["tags"].tolist() == ["a b", ""]


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda d: d / "nope.csv", r"no file or folder at .*check the path", id="missing"),
        pytest.param(lambda d: _write_bytes(d / "t.csv", b""), r"is empty \(0 bytes\)", id="zero-bytes"),
        pytest.param(lambda d: _write_bytes(d / "t.csv", b"a,b\n"), r"holds no rows .*'a', 'b'", id="header-only"),
        pytest.param(
            lambda d: _write_bytes(d / "t.csv", bytes(range(256)) * 4),
            r"binary data .*Expected a UTF-8 CSV or a Parquet file",
            id="binary-garbage",
        ),
        pytest.param(
            lambda d: _write_bytes(d / "t.csv", "name,x\nJosé,1\n".encode("latin-1")),
            r"not UTF-8 text \(byte 0xe9.*re-save it as 'CSV UTF-8'",
            id="latin-1",
        ),
        pytest.param(
            lambda d: _write_bytes(d / "t.csv", b"a,b,a\n1,2,3\n"),
            r"duplicate column names: 'a' \(2 times\).*rename or drop",
            id="duplicate-columns",
        ),
        pytest.param(
            lambda d: _write_bytes(d / "t.csv", b"a,b\n1,2\n3,4,5,6\n"),
            r"cannot parse .*same number of fields",
            id="ragged",
        ),
        pytest.param(
            lambda d: _write_bytes(d / "t.parquet", b"not parquet at all"),
            r"cannot read .* as Parquet .*re-export it",
            id="bad-parquet",
        ),
        pytest.param(
            lambda d: _write_bytes(d / "t.xlsx", b"PK\x03\x04"), r"spreadsheet.*Save the sheet as CSV", id="xlsx"
        ),
        pytest.param(lambda d: d, r"holds no Parquet files.*pass the table file itself", id="folder-without-parquet"),
    ],
)
def test_read_table_refuses(tmp_path: Path, make: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_table(make(tmp_path))  # type: ignore[operator]


def test_read_table_refuses_duplicate_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), path)
    with pytest.raises(DataError, match=r"duplicate column names: 'a' \(2 times\)"):
        read_table(path)


def test_read_columns_refuses(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no file or folder"):
        read_columns(tmp_path / "nope.parquet")
    with pytest.raises(DataError, match=r"cannot read .* as Parquet .*Expected a valid Parquet file; re-export"):
        read_columns(_write_bytes(tmp_path / "t.parquet", b"PAR1 but not really"))
    with pytest.raises(DataError, match=r"holds no header row.*column names in its first line"):
        read_columns(_write_bytes(tmp_path / "blank.csv", b"\n\n"))
    with pytest.raises(DataError, match=r"cannot read the header of .*EOF inside string.*Expected UTF-8 CSV text"):
        read_columns(_write_bytes(tmp_path / "quote.csv", b'"a,b\n1,2'))


# -- TablePreprocessor: against references ------------------------------------------------------------
def test_numeric_columns_write_their_quantile_score_then_their_bins() -> None:
    # The map itself is checked against scikit-learn's QuantileTransformer in tests/data/test_columns_quantiles.py.
    frame = _frame()
    prep = TablePreprocessor.fit(frame, columns=["age"])
    spec = prep.specs[0]
    ages = frame["age"].to_numpy(np.float64)
    assert spec.edges is not None and prep.feature_names == ["age"] + [f"age:bin{i}" for i in range(spec.num_bins)]
    expected = np.column_stack([np.interp(ages, spec.quantiles, spec.scores), piecewise_linear(ages, spec.edges)])
    torch.testing.assert_close(prep.transform(frame), torch.tensor(expected, dtype=torch.float32))  # float32 output
    assert (np.argsort(prep.transform(frame)[:, 0].numpy(), kind="stable") == np.argsort(ages, kind="stable")).all()


def test_missing_numbers_take_the_median_and_an_indicator() -> None:
    values = np.array([1.0, np.nan, 4.0, 10.0, np.nan, 3.0])
    frame = pd.DataFrame({"x": values})
    prep = TablePreprocessor.fit(frame, columns=["x"])
    filled = np.where(np.isnan(values), np.nanmedian(values), values)
    spec = prep.specs[0]
    bins = piecewise_linear(filled, np.asarray(spec.edges))
    reference = np.column_stack([spec.scale(filled), bins, np.isnan(values)])
    torch.testing.assert_close(prep.transform(frame), torch.tensor(reference, dtype=torch.float32))
    assert prep.feature_names == ["x", "x:bin0", "x:bin1", "x:bin2", "x:missing"]


def test_categorical_columns_match_one_hot_encoder_with_an_unseen_bucket() -> None:
    train = _frame()
    prep = TablePreprocessor.fit(train, columns=["city"])
    test = pd.DataFrame({"city": ["Pune", "Rome", "Oslo"]})
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train[["city"]])
    out = prep.transform(test).numpy()
    np.testing.assert_array_equal(out[:, :3], encoder.transform(test[["city"]]))
    np.testing.assert_array_equal(out[:, 3], [0, 1, 0])  # the <unseen> bucket catches "Rome"
    assert prep.feature_names == ["city=Lima", "city=Oslo", "city=Pune", "city=<unseen>"]


def test_missing_categories_take_the_most_frequent_and_an_indicator() -> None:
    frame = pd.DataFrame({"c": ["b", None, "a", "b", None]})
    prep = TablePreprocessor.fit(frame, columns=["c"])
    np.testing.assert_array_equal(
        prep.transform(frame).numpy(), [[0, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 1]]
    )


# -- which columns are which kind (more in test_column_kinds.py) -----------------------------------------
def test_column_kinds() -> None:
    frame = pd.DataFrame(
        {
            "count": [1, 5, 2, 7],  # int: numeric
            "flag": [True, False, True, True],  # bool: boolean
            "grade": pd.Categorical(["a", "b", "a", "c"]),  # category: categorical
            "text_numbers": pd.Series(["1.5", "2", "3", None], dtype=object),  # strings of numbers: numeric
            "code": [3, 17, 3, 42],
        }
    )
    prep = TablePreprocessor.fit(frame, columns=list(frame.columns), kinds={"code": "categorical"})
    kinds = {spec.name: type(spec).__name__ for spec in prep.specs}
    assert kinds == {
        "count": "NumericColumn",
        "flag": "BooleanColumn",
        "grade": "CategoricalColumn",
        "text_numbers": "NumericColumn",
        "code": "CategoricalColumn",
    }
    numeric = [spec for spec in prep.specs if isinstance(spec, NumericColumn)]
    bins = sum(spec.num_bins for spec in numeric)
    assert prep.num_features == prep.transform(frame).shape[1] == len(prep.feature_names) == 1 + 1 + 4 + 2 + 4 + bins


def test_csv_boolean_column_with_a_blank_is_boolean_with_a_missing_indicator(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("flag,x\nTrue,1\n,2\nFalse,3\n")
    prep = TablePreprocessor.fit(read_table(path), columns=["flag"])
    assert prep.feature_names == ["flag", "flag:missing"]
    np.testing.assert_array_equal(prep.transform(read_table(path)).numpy(), [[1, 0], [1, 1], [0, 0]])


def test_integer_codes_read_as_float_match_the_fitted_ints() -> None:
    prep = TablePreprocessor.fit(pd.DataFrame({"code": [1, 2, 2]}), columns=["code"], kinds={"code": "categorical"})
    as_float = pd.DataFrame({"code": [2.0, np.nan, 1.0]})  # what a CSV with a blank cell reads as
    np.testing.assert_array_equal(prep.transform(as_float).numpy(), [[0, 1, 0], [0, 1, 0], [1, 0, 0]])


def test_categories_beyond_max_one_hot_are_told_apart_by_frequency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("labelwise.data._columns.MAX_ONE_HOT", 2)
    frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]})
    prep = TablePreprocessor.fit(frame, columns=["c"])
    assert prep.feature_names == ["c=a", "c=b", "c=<unseen>", "c:frequency"]
    assert "the 2 most frequent one-hot, the other 2 by frequency" in prep.specs[0].why
    out = prep.transform(pd.DataFrame({"c": ["a", "c", "d", "new"]})).numpy()
    np.testing.assert_array_equal(out[:, :3], [[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(out[:, 3], np.log1p([5, 2, 1, 0]) / np.log1p(11), rtol=1e-6)


def test_constant_and_all_missing_columns_are_left_out_with_the_reason() -> None:
    frame = pd.DataFrame({"k": [3.0, 3.0, 3.0], "gone": [np.nan, np.nan, np.nan], "x": [1.0, 2.0, 3.0]})
    prep = TablePreprocessor.fit(frame, columns=["k", "gone", "x"])
    assert prep.feature_names == ["x", "x:bin0", "x:bin1"]
    assert [spec.why for spec in prep.specs[:2]] == [
        "one value (3.0) in every row; left out: nothing to learn from",
        "all 3 cells are empty; left out: nothing to learn from",
    ]
    assert prep.required == ["x"]  # data to predict on need not have the left-out columns
    assert prep.transform(frame[["x"]]).shape == (3, 3)  # x and its two bins


# -- transform behaviour --------------------------------------------------------------------------------
def test_transform_ignores_extra_columns_and_column_order() -> None:
    frame = _frame()
    prep = TablePreprocessor.fit(frame, columns=["age", "city"])
    shuffled = frame[["label", "city", "age"]].assign(extra=1)
    torch.testing.assert_close(prep.transform(shuffled), prep.transform(frame), rtol=0, atol=0)


def test_json_round_trip_transforms_identically() -> None:
    frame = pd.DataFrame({"x": [1.0, None, 3.0], "c": ["u", "v", None], 0: [1, 2, 3]})
    prep = TablePreprocessor.fit(frame, columns=["x", "c", 0])
    again = TablePreprocessor.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert again == prep
    assert torch.equal(again.transform(frame), prep.transform(frame))


def test_transform_names_missing_columns() -> None:
    prep = TablePreprocessor.fit(_frame(), columns=["age", "city"])
    with pytest.raises(DataError, match=r"lacks 2 feature column\(s\).*'age', 'city'.*it has 'label'.*add the missing"):
        prep.transform(_frame()[["label"]])


def test_transform_names_every_column_and_row_holding_non_numbers() -> None:
    prep = TablePreprocessor.fit(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), columns=["a", "b"])
    bad = pd.DataFrame({"a": ["1", "x", "2", "?"], "b": ["inf", "4", "", None]})
    with pytest.raises(DataError, match=r"'a' in rows 1, 3 \('x', '\?'\); 'b' in row 0 \('inf'\).*blank those cells"):
        prep.transform(bad)


@pytest.mark.parametrize(
    ("frame", "kwargs", "match"),
    [
        pytest.param(_frame(), {"columns": []}, r"no feature columns.*check `--target`", id="no-columns"),
        pytest.param(_frame().iloc[:0], {"columns": ["age"]}, r"no rows", id="no-rows"),
        pytest.param(_frame(), {"columns": ["agee"]}, r"'agee' are not in the table.*did you mean 'age'", id="unknown"),
        pytest.param(_frame(), {"columns": ["age", "age"]}, r"listed more than once: 'age'", id="duplicated"),
        pytest.param(
            pd.DataFrame({"flag": ["yes", "no", "maybe"]}),
            {"columns": ["flag"], "kinds": {"flag": "boolean"}},
            r"--column-kinds reads 'flag' as boolean, but 'flag' in row 2 \('maybe'\) \(a yes/no column takes "
            r"true/false, yes/no, 1/0\)\. Fix those cells or choose another kind\.",
            id="not-a-boolean",
        ),
        pytest.param(
            pd.DataFrame({"income": [str(i) for i in range(19)] + ["?"]}),
            {"columns": ["income"]},
            r"'income' in row 19 \('\?'\) holds text, while the other 19 cells hold numbers.*"
            r"column_kinds=\{'income': 'categorical'\}",
            id="numbers-with-a-typo",
        ),
        pytest.param(
            pd.DataFrame({"x": [1.0, np.inf]}), {"columns": ["x"]}, r"'x' in row 1 \(inf\).*infinite", id="infinite"
        ),
    ],
)
def test_fit_refuses(frame: pd.DataFrame, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        TablePreprocessor.fit(frame, **kwargs)  # type: ignore[arg-type]


def test_from_dict_refuses_an_unknown_column_type() -> None:
    with pytest.raises(DataError, match="unknown column type 'weird'"):
        TablePreprocessor.from_dict({"columns": [{"type": "weird"}]})


@settings(max_examples=25, deadline=None)
@given(
    numbers=st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=30),
    words=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), min_size=30, max_size=30),
)
def test_transform_is_finite_and_one_hot_sums_to_one(numbers: list[float | None], words: list[str | None]) -> None:
    frame = pd.DataFrame({"n": pd.Series(numbers, dtype=float), "w": pd.Series(words[: len(numbers)], dtype=object)})
    prep = TablePreprocessor.fit(frame, columns=["n", "w"])
    out = prep.transform(frame)
    assert out.shape == (len(frame), prep.num_features) and torch.isfinite(out).all()
    one_hot = [i for i, name in enumerate(prep.feature_names) if name.startswith("w=")]
    kinds = {spec.name: spec.kind for spec in prep.specs}
    assert bool(one_hot) == (kinds["w"] == "categorical")  # else "w" is empty or constant: left out
    if one_hot:
        torch.testing.assert_close(out[:, one_hot].sum(dim=1), torch.ones(len(frame)))
