"""Tests of labelwise.data.sources: tables, image tables, folders and in-memory frames as one `Source`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelwise.data.sources import load_source, source_from_frame
from labelwise.errors import DataError

MakeImage = Callable[..., Path]  # the `make_image` fixture of tests/data/conftest.py


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_feature_table(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "id,x,color,is_valid,Label\nr1,1.5,red,0,cat dog\nr2,,blue,1,\nr3,3,,no,None\n")
    source = load_source(path, id_col="id", for_training=True)
    assert source.kind == "table" and source.root == tmp_path.resolve()
    assert source.feature_columns == ["x", "color"]
    assert source.target == "Label" and source.image_col is None and source.image_paths == []
    assert source.ids == ["r1", "r2", "r3"]
    assert source.labels is not None and source.labels.tolist() == ["cat dog", "", "None"]  # "" = no label
    assert source.is_valid is not None and source.is_valid.tolist() == [False, True, False]
    assert source.is_test is None and source.num_items == 3
    assert np.isnan(source.frame["x"][1]) and source.frame["color"].isna().tolist() == [False, False, True]


@pytest.mark.parametrize("fmt", ["parquet", "parquet-folder"])
def test_parquet_sources(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", None, "b"]})
    if fmt == "parquet":
        path = tmp_path / "t.parquet"
        frame.to_parquet(path)
    else:
        path = tmp_path / "parts"
        path.mkdir()
        frame.to_parquet(path / "part-0.parquet")
    source = load_source(path, for_training=True)
    assert source.kind == "table" and source.feature_columns == ["x"] and source.ids == ["0", "1", "2"]
    assert source.labels is not None and source.labels.tolist() == ["a", "", "b"]


def test_several_target_columns_give_a_frame(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "x,cloud,haze\n1,1,0\n2,0,0\n")
    source = load_source(path, target=["cloud", "haze"], for_training=True)
    assert isinstance(source.labels, pd.DataFrame) and source.labels.values.tolist() == [[1, 0], [0, 0]]
    assert source.target == ["cloud", "haze"] and source.feature_columns == ["x"]


def test_numeric_target_with_a_blank_stays_numeric(tmp_path: Path) -> None:
    source = load_source(_csv(tmp_path / "t.csv", "x,y\n1,0\n2,\n3,1\n"), for_training=True)
    assert source.labels is not None and source.labels.isna().tolist() == [False, True, False]
    assert pd.api.types.is_float_dtype(source.labels)


def test_prediction_without_a_label_column(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "x,label,class\n1,a,b\n")
    source = load_source(path, for_training=False)  # two candidates: not an error when no labels are needed
    assert source.labels is None and source.target is None
    assert source.feature_columns == ["x", "label", "class"]


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        pytest.param("x,z\n1,2\n", {}, r"has no target column; its columns are 'x', 'z'.*--target", id="no-target"),
        pytest.param(
            "x,label,y\n1,a,b\n", {}, r"several possible target columns \('label', 'y'\).*--target", id="ambiguous"
        ),
        pytest.param("x,label\n1,a\n", {"target": "lable"}, r"target='lable' is not a column.*'label'\?", id="typo"),
        pytest.param("x,label\n1,a\n", {"target": []}, r"target=\[\] names no column", id="empty-list"),
        pytest.param(
            "x,a\n1,0\n", {"target": ["a", "a"]}, r"target=\['a', 'a'\] repeats a column", id="repeated-target"
        ),
        pytest.param("x,y\n1,a\n", {"id_col": "ID"}, r"id_col='ID' is not a column.*--id-col", id="unknown-id-col"),
        pytest.param("x,y\n1,a\n", {"image_col": "img"}, r"image_col='img' is not a column", id="unknown-image-col"),
        pytest.param("id,y\n1,a\n", {"id_col": "id"}, r"has no feature columns", id="no-features"),
        pytest.param(
            "x,y,is_valid\n1,a,maybe\n2,b,1\n", {}, r"'is_valid' holds 'maybe' in row 0.*true/false", id="is-valid"
        ),
    ],
)
def test_table_source_refuses(tmp_path: Path, text: str, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_source(_csv(tmp_path / "t.csv", text), for_training=True, **kwargs)  # type: ignore[arg-type]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no file or folder at .*check the path"):
        load_source(tmp_path / "nope.csv", for_training=False)


# -- images listed in a table ----------------------------------------------------------------------------
def test_image_table_resolves_paths_against_the_table_folder(tmp_path: Path, make_image: MakeImage) -> None:
    make_image("data/imgs/a.png")
    absolute = make_image("elsewhere/b.jpg")
    (tmp_path / "data" / "t.csv").write_text(f"file,label,note\nimgs/a.png,cat,x\n{absolute},dog,y\n")
    source = load_source(tmp_path / "data" / "t.csv", for_training=True)  # the image column is detected
    # The other columns are features too: one model reads the images and them (issue #14).
    assert source.kind == "images" and source.image_col == "file" and source.feature_columns == ["note"]
    assert source.image_paths == [str((tmp_path / "data" / "imgs" / "a.png").resolve()), str(absolute)]
    assert source.ids == ["imgs/a.png", str(absolute)]  # the paths as given


def test_image_table_refuses_ambiguous_or_empty_image_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"columns 'a', 'b' all hold image file names.*--image-col"):
        load_source(_csv(tmp_path / "t.csv", "a,b,label\nx.png,y.png,cat\n"), for_training=True)
    with pytest.raises(DataError, match=r"image column 'a' is empty in row 1.*fill in or drop"):
        load_source(_csv(tmp_path / "u.csv", "a,label\nx.png,cat\n,dog\n"), image_col="a", for_training=True)


# -- image folders ---------------------------------------------------------------------------------------
def test_folder_source(tmp_path: Path, make_image: MakeImage) -> None:
    for name in ("train/cat/1.png", "train/dog/2.png", "valid/cat/3.png", "test/dog/4.png"):
        make_image(name)
    source = load_source(tmp_path, for_training=True)
    assert source.kind == "images" and source.root == tmp_path.resolve() and source.target is None
    assert source.ids == ["test/dog/4.png", "train/cat/1.png", "train/dog/2.png", "valid/cat/3.png"]
    assert source.image_paths == [str((tmp_path / i).resolve()) for i in source.ids]
    assert source.labels is not None and source.labels.tolist() == ["dog", "cat", "dog", "cat"]
    assert source.is_valid is not None and source.is_valid.tolist() == [False, False, False, True]
    assert source.is_test is not None and source.is_test.tolist() == [True, False, False, False]


def test_flat_folder_for_prediction_has_no_labels_or_splits(tmp_path: Path, make_image: MakeImage) -> None:
    make_image("a.png")
    source = load_source(tmp_path, target="label", image_col="file", for_training=False)  # passed along, ignored
    assert source.labels is None and source.is_valid is None and source.is_test is None


def test_folder_refuses_table_options(tmp_path: Path, make_image: MakeImage) -> None:
    make_image("cat/a.png")
    make_image("dog/b.png")
    with pytest.raises(DataError, match=r"target='label' apply to tables.*image folder.*Drop those options"):
        load_source(tmp_path, target="label", for_training=True)
    with pytest.raises(DataError, match=r"id_col='name' apply to tables"):
        load_source(tmp_path, id_col="name", for_training=False)


# -- in-memory frames ------------------------------------------------------------------------------------
def test_source_from_frame(tmp_path: Path, make_image: MakeImage) -> None:
    frame = pd.DataFrame({0: [1.0, 2.0], "Target": ["a", "b"]})
    source = source_from_frame(frame, for_training=True)
    assert source.feature_columns == ["0"] and source.target == "Target" and source.ids == ["0", "1"]
    make_image("a.png")
    images = source_from_frame(pd.DataFrame({"img": ["a.png"], "y": ["cat"]}), root=tmp_path)
    assert images.kind == "images" and images.image_paths == [str(tmp_path.resolve() / "a.png")]
    with pytest.raises(DataError, match=r"the DataFrame has no target column; its columns are 'x'"):
        source_from_frame(pd.DataFrame({"x": [1]}), for_training=True)
