"""Tests of labelwise.data.folders: the three folder layouts and the errors around them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from labelwise.data.folders import scan_image_folder
from labelwise.errors import DataError

MakeImage = Callable[..., Path]  # the `make_image` fixture of tests/data/conftest.py


def test_class_tree(tmp_path: Path, make_image: MakeImage) -> None:
    for name in ("dog/b.png", "cat/a.JPG", "cat/nested/deeper/c.webp", "dog/.hidden.png", ".git/x.png"):
        make_image(name)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "empty_class").mkdir()
    frame = scan_image_folder(tmp_path, for_training=True)
    assert list(frame.columns) == ["path", "id", "label", "split"]
    assert frame["id"].tolist() == ["cat/a.JPG", "cat/nested/deeper/c.webp", "dog/b.png"]
    assert frame["label"].tolist() == ["cat", "cat", "dog"]
    assert frame["split"].tolist() == [None, None, None]
    assert frame["path"].tolist() == [str((tmp_path / i).resolve()) for i in frame["id"]]


def test_split_tree_with_aliases_and_an_unlabelled_test_split(tmp_path: Path, make_image: MakeImage) -> None:
    for name in ("train/cat/1.png", "train/dog/2.png", "val/cat/3.png", "test/4.png", "test/5.png"):
        make_image(name)
    frame = scan_image_folder(tmp_path, for_training=True)
    assert frame[["id", "label", "split"]].values.tolist() == [
        ["test/4.png", None, "test"],
        ["test/5.png", None, "test"],
        ["train/cat/1.png", "cat", "train"],
        ["train/dog/2.png", "dog", "train"],
        ["val/cat/3.png", "cat", "valid"],
    ]


def test_flat_folder_is_unlabelled(tmp_path: Path, make_image: MakeImage) -> None:
    for name in ("b.png", "a.bmp", "c.tif"):
        make_image(name)
    frame = scan_image_folder(tmp_path)
    assert frame["id"].tolist() == ["a.bmp", "b.png", "c.tif"]
    assert frame["label"].tolist() == [None, None, None]


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        pytest.param(["a.png", "b.png"], r"has no class folders under ROOT; training needs at least two", id="flat"),
        pytest.param(
            ["cat/a.png", "cat/b.png"], r"one class folder \('cat'\) under ROOT.*add the other", id="one-class"
        ),
        pytest.param(
            ["train/cat/a.png", "valid/dog/b.png"], r"one class folder \('cat'\) under train/", id="one-train-class"
        ),
        pytest.param(["valid/cat/a.png", "valid/dog/b.png"], r"no class folders under train/", id="no-train-split"),
    ],
)
def test_training_needs_two_classes(tmp_path: Path, make_image: MakeImage, layout: list[str], match: str) -> None:
    for name in layout:
        make_image(name)
    scan_image_folder(tmp_path)  # fine for prediction
    with pytest.raises(DataError, match=match):
        scan_image_folder(tmp_path, for_training=True)


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        pytest.param(
            ["cat/a.png", "loose.png"],
            r"holds class folders \('cat'\) and also loose images \('loose.png'\).*move the loose images",
            id="classes-and-loose-images",
        ),
        pytest.param(
            ["train/cat/a.png", "extra/b.png"],
            r"split folders \('train'\) and also 'extra'.*move the other entries",
            id="splits-and-other-folders",
        ),
    ],
)
def test_ambiguous_layouts(tmp_path: Path, make_image: MakeImage, layout: list[str], match: str) -> None:
    for name in layout:
        make_image(name)
    with pytest.raises(DataError, match=match):
        scan_image_folder(tmp_path)


def test_missing_folder_file_and_no_images(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no folder at .*check the path"):
        scan_image_folder(tmp_path / "nope")
    (tmp_path / "table.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match=r"is a file, not a folder of images.*--image-col"):
        scan_image_folder(tmp_path / "table.csv")
    with pytest.raises(DataError, match=r"no images under .*found files of types '.csv'.*Expected files ending in"):
        scan_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"the folder is empty"):
        scan_image_folder(tmp_path / "empty")
