"""Tests of labelwise.data.inspection: each finding of `inspect_data` on data that has it and on data that does not."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from labelwise.data.inspection import MIN_CLASS_ITEMS, inspect_data
from labelwise.data.sources import source_from_frame
from labelwise.data.splits import split_source
from labelwise.decide.thresholds import MIN_COUNT
from labelwise.errors import DataError, LabelError
from labelwise.task import infer_task

MakeImage = Callable[..., Path]  # the `make_image` fixture of tests/data/conftest.py


def _table(n: int = 40, *, seed: int = 0, labels: list[str] | None = None) -> pd.DataFrame:
    """Distinct random rows (no duplicates, no useless columns), labels alternating a/b unless given."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "color": rng.choice(["red", "blue", "green"], n),
            "label": labels if labels is not None else ["a", "b"] * (n // 2),
        }
    )


def _warning(report: dict[str, Any], fragment: str) -> str:
    found = [line for line in report["warnings"] if fragment in line]
    assert len(found) == 1, report["warnings"]
    return str(found[0])


def _no_warning(report: dict[str, Any], fragment: str) -> None:
    assert not [line for line in report["warnings"] if fragment in line], report["warnings"]


# -- the whole report ---------------------------------------------------------------------------------
def test_clean_table_report_is_json_and_warns_of_nothing(tmp_path: Path) -> None:
    _table(60).to_csv(tmp_path / "d.csv", index=False)  # 60 rows: 6 validation items per class, enough to tune
    report = inspect_data(tmp_path / "d.csv")
    assert json.loads(json.dumps(report)) == report  # JSON-ready as is: no numpy scalars, no tuples
    assert report["data"] == str(tmp_path / "d.csv") and report["source"] == "table" and report["rows"] == 60
    assert report["task"] == "binary" and "binary" in report["why"]
    assert report["classes"] == {"a": 30, "b": 30} and report["imbalance_ratio"] == 1.0
    assert report["split"]["train"] == 48 and report["split"]["valid"] == 12 and report["split"]["test"] == 0
    assert report["split"]["valid_classes"] == {"a": 6, "b": 6}
    assert report["duplicates"]["items"] == 0 and report["conflicting_labels"]["groups"] == 0
    assert report["leakage"] == {"valid": {"items": 0, "of": 12, "examples": []}, "test": None}
    assert report["columns"] == {"features": 3, "all_missing": [], "constant": []}
    assert report["unreadable_images"] is None and report["label_cardinality"] is None
    assert report["warnings"] == []


def test_split_is_the_one_fit_makes() -> None:
    frame = _table(50, labels=list("aabbc") * 10)
    task = infer_task(frame["label"])
    for seed in (0, 3):
        expected = split_source(source_from_frame(frame), task.encode(frame["label"]), task, seed=seed)
        report = inspect_data(frame, seed=seed)
        assert report["split"]["how"] == expected.how and f"seed {seed}" in expected.how
        valid = frame["label"].iloc[expected.valid].value_counts().to_dict()
        assert report["split"]["valid_classes"] == {name: valid.get(name, 0) for name in "abc"}


# -- duplicates, conflicting labels, leakage ----------------------------------------------------------
def test_duplicate_rows_are_counted_and_named() -> None:
    frame = _table()
    frame = pd.concat([frame, frame.iloc[[3, 3, 7]]], ignore_index=True)  # row 3 twice more, row 7 once more
    # The label, an id-like `is_valid` and the target are not features: rows that differ only there still repeat.
    report = inspect_data(frame.assign(is_valid=[False] * 42 + [True]))
    assert report["duplicates"] == {
        "what": "identical feature values",
        "items": 3,
        "groups": 2,
        "examples": [[3, 40, 41], [7, 42]],
    }
    assert "rows 3, 40, 41" in _warning(report, "exact duplicates: 3 copies of other items")
    assert report["conflicting_labels"]["groups"] == 0  # copies keep their labels


def test_rows_that_differ_in_one_feature_are_not_duplicates() -> None:
    frame = _table()
    frame.loc[40] = frame.loc[3]
    frame.loc[40, "x2"] = np.nextafter(frame.loc[3, "x2"], np.inf)  # one ulp apart: not exact
    frame.loc[41] = frame.loc[5]
    frame.loc[41, "color"] = "purple"
    report = inspect_data(frame)
    assert report["duplicates"]["items"] == 0
    _no_warning(report, "exact duplicates")


def test_missing_values_repeat_like_values() -> None:
    frame = _table().assign(x2=np.nan)
    frame.loc[40] = frame.loc[0]
    assert inspect_data(frame)["duplicates"]["items"] == 1


def test_conflicting_labels_are_named() -> None:
    frame = _table()
    frame.loc[40] = frame.loc[2]  # row 2 is "a"
    frame.loc[40, "label"] = "b"
    report = inspect_data(frame)
    assert report["conflicting_labels"] == {
        "groups": 1,
        "items": 2,
        "examples": [{"ids": [2, 40], "labels": ["a", "b"]}],
    }
    assert "row 2 ('a'), row 40 ('b')" in _warning(report, "identical items with different labels")


def test_multilabel_conflicts_compare_label_sets() -> None:
    labels = ["p q", "p", "q", ""] * 10
    frame = _table(labels=labels)
    frame.loc[40] = frame.loc[0]  # same features, same set {p, q}: a copy, not a conflict
    frame.loc[41] = frame.loc[1]
    frame.loc[41, "label"] = "p q"  # {p} vs {p, q}
    report = inspect_data(frame)
    assert report["duplicates"]["items"] == 2
    assert report["conflicting_labels"]["examples"] == [{"ids": [1, 41], "labels": [["p"], ["p", "q"]]}]


def test_leakage_across_a_given_split() -> None:
    frame = _table().assign(is_valid=[False] * 30 + [True] * 10)
    frame.loc[35, ["x1", "x2", "color"]] = frame.loc[4, ["x1", "x2", "color"]]  # valid 35 repeats train 4
    frame.loc[36, ["x1", "x2", "color"]] = frame.loc[37, ["x1", "x2", "color"]]  # valid-valid: not leakage
    report = inspect_data(frame)
    assert report["split"]["how"].startswith("given")
    assert report["leakage"]["valid"] == {"items": 1, "of": 10, "examples": [[35, 4]]}
    assert "validation row 35 = training row 4" in _warning(report, "1 of 10 validation items (10.0%)")


def test_duplicates_on_one_side_do_not_leak() -> None:
    frame = _table().assign(is_valid=[False] * 30 + [True] * 10)
    frame.loc[1, ["x1", "x2", "color"]] = frame.loc[0, ["x1", "x2", "color"]]  # both train
    report = inspect_data(frame)
    assert report["duplicates"]["items"] == 1 and report["leakage"]["valid"]["items"] == 0
    _no_warning(report, "repeat a training item")


def test_leakage_under_the_seeded_split_matches_a_reference() -> None:
    frame = _table(200)
    frame = pd.concat([frame, frame.iloc[:60]], ignore_index=True)  # 60 rows twice: some pairs straddle the split
    task = infer_task(frame["label"])
    split = split_source(source_from_frame(frame), task.encode(frame["label"]), task, seed=0)
    # Reference, by value: validation rows whose features equal some training row's.
    rows = [tuple(row) for row in frame[["x1", "x2", "color"]].itertuples(index=False)]
    train_rows = {rows[i] for i in split.train}
    expected = sum(rows[i] in train_rows for i in split.valid)
    assert 10 < expected < 30  # about 60 * 2 * 0.8 * 0.2 = 19
    assert inspect_data(frame)["leakage"]["valid"]["items"] == expected


# -- rare classes ------------------------------------------------------------------------------------
def test_classes_too_rare_to_validate_are_named() -> None:
    report = inspect_data(_table(52, labels=["a", "b"] * 24 + ["z"] * (MIN_CLASS_ITEMS - 1)))
    assert report["rare_classes"]["to_validate"] == {"z": MIN_CLASS_ITEMS - 1}
    assert report["rare_classes"]["to_threshold"] is None  # multiclass decides by argmax: no thresholds to tune
    assert "'z' (4 items)" in _warning(report, f"fewer than {MIN_CLASS_ITEMS} items")


def test_classes_with_enough_items_are_not_rare() -> None:
    report = inspect_data(_table(53, labels=["a", "b"] * 24 + ["z"] * MIN_CLASS_ITEMS))
    assert report["rare_classes"]["to_validate"] == {}
    _no_warning(report, "too few to both train on and validate")


@pytest.mark.parametrize(("positives", "listed"), [(MIN_COUNT - 1, True), (MIN_COUNT, False)])
def test_binary_class_too_rare_to_threshold(positives: int, listed: bool) -> None:
    labels = ["no"] * 60 + ["yes"] * (10 + positives)
    is_valid = [False] * 50 + [True] * 10 + [False] * 10 + [True] * positives
    report = inspect_data(_table(len(labels), labels=labels).assign(is_valid=is_valid))
    assert report["split"]["valid_classes"] == {"no": 10, "yes": positives}
    assert report["rare_classes"]["to_threshold"] == ({"yes": positives} if listed else {})
    if listed:
        assert "stays at 0.5" in _warning(report, f"fewer than {MIN_COUNT} items of 'yes'")
    else:
        _no_warning(report, "stays at 0.5")


def test_multilabel_label_too_rare_to_threshold() -> None:
    # Validation rows 40..59: label q on 3 of them, p on 10.
    labels = ["p q", "p"] * 20 + ["p"] * 10 + ["q"] * 3 + [""] * 7
    report = inspect_data(_table(60, labels=labels).assign(is_valid=[False] * 40 + [True] * 20))
    assert report["rare_classes"]["to_threshold"] == {"q": 3}
    assert "'q' (3 positives)" in _warning(report, "validation positives")


# -- multilabel cardinality and empty rate -----------------------------------------------------------
def test_multilabel_cardinality_and_empty_rate() -> None:
    report = inspect_data(_table(labels=["p q", "p", "", "q r"] * 10))
    assert report["task"] == "multilabel" and report["classes"] == {"p": 20, "q": 20, "r": 10}
    assert report["label_cardinality"] == 1.25 and report["empty_label_rate"] == 0.25
    assert report["imbalance_ratio"] == 2.0


def test_single_label_has_no_cardinality() -> None:
    report = inspect_data(_table())
    assert report["label_cardinality"] is None and report["empty_label_rate"] is None


# -- columns -----------------------------------------------------------------------------------------
def test_constant_and_all_missing_columns_are_named(tmp_path: Path) -> None:
    frame = _table().assign(version="v1", blank=np.nan, zero=0)
    frame.to_csv(tmp_path / "d.csv", index=False)
    report = inspect_data(tmp_path / "d.csv")  # a CSV's empty column reads as missing
    assert report["columns"] == {"features": 6, "all_missing": ["blank"], "constant": ["version", "zero"]}
    assert "'blank' are empty in every row" in _warning(report, "empty in every row")
    assert "'version', 'zero' hold the same value" in _warning(report, "same value in every row")


def test_a_column_with_one_value_and_gaps_is_not_constant() -> None:
    # Its missing cells carry information (the preprocessor adds a :missing indicator).
    report = inspect_data(_table().assign(flag=["on", None] * 20))
    assert report["columns"]["constant"] == [] and report["columns"]["all_missing"] == []
    _no_warning(report, "every row")


# -- images ------------------------------------------------------------------------------------------
def _folder(make_image: MakeImage, root: str, *, per_class: int = 6) -> Path:
    for i in range(per_class):
        make_image(f"{root}/cat/{i}.png", seed=i)
        make_image(f"{root}/dog/{i}.png", seed=100 + i)
    return make_image(f"{root}/cat/0.png", seed=0).parent.parent


def test_clean_image_folder(make_image: MakeImage) -> None:
    report = inspect_data(_folder(make_image, "imgs", per_class=25))  # 5 validation items per class: enough to tune
    assert report["source"] == "images" and report["rows"] == 50 and report["classes"] == {"cat": 25, "dog": 25}
    assert report["unreadable_images"] == [] and report["columns"] is None
    assert report["duplicates"] == {"what": "identical file bytes", "items": 0, "groups": 0, "examples": []}
    assert report["warnings"] == []


def test_unreadable_images_are_named(make_image: MakeImage, bad_files: dict[str, Path]) -> None:
    root = _folder(make_image, "imgs")
    for name in ("truncated", "empty", "text"):
        shutil.copy(bad_files[name], root / "dog" / f"{name}.png")
    report = inspect_data(root)
    assert {bad["path"]: bad["reason"] for bad in report["unreadable_images"]} == {
        "dog/empty.png": "empty file (0 bytes)",
        "dog/text.png": "not an image format PIL recognizes",
        "dog/truncated.png": report["unreadable_images"][2]["reason"],
    }
    assert "truncated" in report["unreadable_images"][2]["reason"]
    line = _warning(report, "3 image(s) cannot be read")
    assert "'dog/empty.png' (empty file (0 bytes))" in line and "--skip-bad-images" in line
    assert report["duplicates"]["items"] == 0  # unreadable files match nothing, not even each other


def test_a_missing_image_of_an_image_table_is_named(make_image: MakeImage, tmp_path: Path) -> None:
    for i in range(8):
        make_image(f"t/{i}.png", seed=i)
    paths = [f"t/{i}.png" for i in range(8)] + ["t/gone.png"]
    pd.DataFrame({"image": paths, "label": list("ab" * 4) + ["a"]}).to_csv(tmp_path / "t.csv", index=False)
    report = inspect_data(tmp_path / "t.csv")
    assert report["unreadable_images"] == [{"path": "t/gone.png", "reason": "file not found"}]


def test_identical_image_files_are_duplicates_and_leak_across_a_split_tree(make_image: MakeImage) -> None:
    root = _folder(make_image, "tree/train")
    for i in range(3):
        make_image(f"tree/valid/cat/{i}.png", seed=200 + i)
        make_image(f"tree/valid/dog/{i}.png", seed=300 + i)
        make_image(f"tree/test/dog/{i}.png", seed=400 + i)
    tree = root.parent
    shutil.copy(root / "cat" / "1.png", tree / "valid" / "dog" / "copy.png")  # same bytes, other class, valid
    shutil.copy(root / "dog" / "2.png", tree / "test" / "dog" / "copy.png")
    report = inspect_data(tree)
    assert report["split"]["train"] == 12 and report["split"]["valid"] == 7 and report["split"]["test"] == 4
    assert report["duplicates"]["items"] == 2
    assert report["leakage"]["valid"] == {"items": 1, "of": 7, "examples": [["valid/dog/copy.png", "train/cat/1.png"]]}
    assert report["leakage"]["test"] == {"items": 1, "of": 4, "examples": [["test/dog/copy.png", "train/dog/2.png"]]}
    assert report["conflicting_labels"]["examples"] == [
        {"ids": ["train/cat/1.png", "valid/dog/copy.png"], "labels": ["cat", "dog"]}
    ]
    _warning(report, "1 of 7 validation items")
    _warning(report, "1 of 4 test items")


def test_same_picture_different_bytes_is_not_an_exact_duplicate(make_image: MakeImage) -> None:
    root = _folder(make_image, "imgs")
    from PIL import Image

    with Image.open(root / "cat" / "1.png") as image:
        image.save(root / "cat" / "again.bmp")  # same pixels, another format
    assert inspect_data(root)["duplicates"]["items"] == 0


# -- the split training could not make, and bad data -------------------------------------------------
def test_split_warnings_become_report_lines() -> None:
    report = inspect_data(_table(21, labels=["a", "b"] * 10 + ["c"]))  # one "c": cannot stratify
    assert report["split"]["how"].startswith("seeded")
    _warning(report, "split: class(es) 'c' have a single item")


def test_data_training_cannot_split_is_reported_not_raised() -> None:
    report = inspect_data(_table(3, labels=["a", "b", "a"]))
    assert report["split"]["how"] is None and report["leakage"] is None
    assert report["rare_classes"]["to_threshold"] is None
    assert "only 3 row(s)" in _warning(report, "`labelwise train` would stop here")


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        pytest.param(lambda d: d / "none.csv", DataError, "no file or folder", id="missing"),
        pytest.param(lambda d: _table().assign(label="a"), LabelError, "one class", id="single-class"),
        pytest.param(lambda d: [1, 2], DataError, "cannot inspect list", id="not-data"),
    ],
)
def test_bad_data_raises(tmp_path: Path, data: Callable[[Path], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        inspect_data(data(tmp_path))
