"""Tests of labelwise.datasets: demo layouts, splits, leakage, determinism and atomic writes.

References are scikit-learn's own `load_digits` / `load_breast_cancer`, read independently of our writers.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits

from labelwise.datasets import Demo, list_demos, make_demo, make_imbalanced_cancer
from labelwise.errors import ConfigError, DataError
from labelwise.task import TaskKind, infer_task

DIGITS = load_digits()
CANCER = load_breast_cancer()
# The target is 5 s per demo; the slack is for the 2 CPU cores shared by the whole team.
MAX_SECONDS = 15.0


def _read(path: Path) -> pd.DataFrame:
    # keep_default_na=False: an empty multilabel cell means "no digit", not a missing value.
    return pd.read_csv(path, keep_default_na=False, dtype={"labels": str})


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _pngs(folder: Path) -> pd.DataFrame:
    """index (load_digits row, from the file name) and class folder of every PNG in a ``<class>/`` tree."""
    files = sorted(folder.glob("*/*.png"))
    return pd.DataFrame({"index": [int(p.stem) for p in files], "label": [int(p.parent.name) for p in files]})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Demo, float]]:
    """Every demo built once with seed 0, with the seconds each build took."""
    root = tmp_path_factory.mktemp("demos")
    out = {}
    for name in list_demos():
        start = time.perf_counter()
        demo = make_demo(name, root)
        out[name] = (demo, time.perf_counter() - start)
    return out


# -- API contract ----------------------------------------------------------------------------------------
def test_list_demos() -> None:
    assert list_demos() == ["cancer", "cancer-imbalanced", "digits", "extreme", "multidigit", "openset", "text"]


@pytest.mark.parametrize("name", ["cancer", "cancer-imbalanced", "digits", "multidigit", "openset"])
def test_each_demo_is_fast_and_described(built: dict[str, tuple[Demo, float]], name: str) -> None:
    demo, seconds = built[name]
    assert seconds < MAX_SECONDS
    assert demo.name == name and demo.train.exists() and demo.test.exists()
    assert demo.description and "\n" not in demo.description
    assert demo.headline in {"accuracy", "roc_auc", "recall", "micro_f1", "unknown_auroc"}
    # Only the open-set demo has classes that test holds and train does not.
    assert bool(demo.known_classes) == bool(demo.unknown_classes) == (name == "openset")
    with pytest.raises(AttributeError):
        demo.name = "other"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("digit", r"did you mean 'digits'"),
        ("multi-digit", r"did you mean 'multidigit'"),
        ("open-set", r"did you mean 'openset'"),
        ("zzz", r"unknown demo 'zzz'; Expected"),
    ],
)
def test_unknown_demo_lists_the_demos(tmp_path: Path, name: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        make_demo(name, tmp_path)
    assert "Expected one of cancer, cancer-imbalanced, digits, extreme, multidigit, openset" in str(err.value)
    assert "labelwise demo NAME" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", 2**32])
def test_bad_seed(tmp_path: Path, seed: object) -> None:
    with pytest.raises(ConfigError, match=r"expected an int in \[0, 2\*\*32\)"):
        make_demo("cancer", tmp_path, seed=seed)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, True, "0.1"])
def test_bad_positive_fraction(tmp_path: Path, fraction: object) -> None:
    with pytest.raises(ConfigError, match=r"expected a number in \(0, 1\].*e\.g\. 0\.1"):
        make_imbalanced_cancer(tmp_path, positive_fraction=fraction)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_root_that_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a folder")
    with pytest.raises(DataError, match="expected a folder to write demos into. Pass a folder path"):
        make_demo("cancer", root)
    assert root.read_text() == "not a folder"


def test_never_overwrites_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "cancer").mkdir()
    (tmp_path / "cancer" / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="is not a labelwise demo.*Pass another root, or move that folder away"):
        make_demo("cancer", tmp_path)
    assert _tree(tmp_path / "cancer").keys() == {"mine.txt"}
    assert [p.name for p in tmp_path.iterdir()] == ["cancer"]  # no temp folder left behind


# -- digits ----------------------------------------------------------------------------------------------
def test_digits_layout_sizes_and_balance(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["digits"]
    assert demo.train.name == "trainval" and demo.target is None and demo.image_col is None
    assert sorted(p.name for p in demo.train.iterdir()) == ["train", "valid"]
    parts = {"train": _pngs(demo.train / "train"), "valid": _pngs(demo.train / "valid"), "test": _pngs(demo.test)}
    everything = pd.concat(parts.values())
    assert sorted(everything["index"]) == list(range(len(DIGITS.target)))  # disjoint and complete
    np.testing.assert_array_equal(everything["label"], DIGITS.target[everything["index"]])
    overall = np.bincount(DIGITS.target, minlength=10) / len(DIGITS.target)
    for part, fraction in {"train": 0.70, "valid": 0.15, "test": 0.15}.items():
        frame = parts[part]
        assert abs(len(frame) - fraction * len(DIGITS.target)) <= 2
        # Stratified: each class within 2 images of its share of the whole set.
        assert np.abs(np.bincount(frame["label"], minlength=10) - overall * len(frame)).max() <= 2


def test_digits_pngs_are_the_upscaled_digits(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["digits"]
    files = sorted(demo.test.glob("*/*.png"))[::25]
    for path in files:
        image = Image.open(path)
        assert image.mode == "L" and image.size == (32, 32)
        pixels = np.asarray(image, dtype=np.float64)
        assert pixels.max() > 200  # full 0..255 range, not 0..16
        blocks = pixels.reshape(8, 4, 8, 4).mean(axis=(1, 3))  # back to 8x8 by 4x4 block means
        source = DIGITS.images[int(path.stem)]
        assert np.corrcoef(blocks.ravel(), source.ravel())[0, 1] > 0.9


def test_digits_labels_are_multiclass(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["digits"]
    task = infer_task([p.parent.name for p in demo.train.glob("*/*/*.png")])
    assert task.kind is TaskKind.MULTICLASS and task.classes == tuple(str(d) for d in range(10))


# -- openset ---------------------------------------------------------------------------------------------
KNOWN, ALL = [str(d) for d in range(6)], [str(d) for d in range(10)]


def _openset_parts(demo: Demo) -> dict[str, pd.DataFrame]:
    return {"train": _pngs(demo.train / "train"), "valid": _pngs(demo.train / "valid"), "test": _pngs(demo.test)}


def test_openset_layout_and_classes(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["openset"]
    assert demo.train.name == "trainval" and demo.test.name == "test"
    assert demo.target is None and demo.image_col is None and demo.headline == "unknown_auroc"
    assert demo.known_classes == tuple(KNOWN) and demo.unknown_classes == tuple(ALL[6:])
    assert sorted(p.name for p in demo.train.iterdir()) == ["train", "valid"]
    for folder, classes in ((demo.train / "train", KNOWN), (demo.train / "valid", KNOWN), (demo.test, ALL)):
        assert sorted(p.name for p in folder.iterdir()) == classes
        assert all(any(p.iterdir()) for p in folder.iterdir())  # no empty class folder
    task = infer_task([p.parent.name for p in demo.train.glob("*/*/*.png")])
    assert task.kind is TaskKind.MULTICLASS and task.classes == tuple(KNOWN)


def test_openset_splits_are_disjoint_and_cover_the_known_digits(built: dict[str, tuple[Demo, float]]) -> None:
    parts = _openset_parts(built["openset"][0])
    everything = pd.concat(parts.values())
    assert everything["index"].is_unique  # no load_digits image in two splits
    np.testing.assert_array_equal(everything["label"], DIGITS.target[everything["index"]])
    known = np.flatnonzero(DIGITS.target < 6)
    assert sorted(everything.loc[everything["label"] < 6, "index"]) == list(known)  # every 0-5 image, once
    unknown = parts["test"][parts["test"]["label"] >= 6]
    assert abs(len(unknown) - 0.15 * (DIGITS.target >= 6).sum()) <= 4  # digits' 15 % test share of 6-9


def test_openset_uses_the_digits_split(built: dict[str, tuple[Demo, float]]) -> None:
    openset, digits = built["openset"][0], built["digits"][0]
    ours, theirs = _openset_parts(openset), _openset_parts(digits)
    for part in ("train", "valid", "test"):
        expected = theirs[part][theirs[part]["label"] < 6] if part != "test" else theirs[part]
        np.testing.assert_array_equal(ours[part]["index"], expected["index"])
    # The same images, byte for byte: test of 0-5 (and of 6-9) is exactly the digits demo's test.
    assert _tree(openset.test) == _tree(digits.test)
    assert _tree(openset.train) == {k: v for k, v in _tree(digits.train).items() if k.split("/")[1] in KNOWN}


def test_openset_is_reused(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["openset"]
    manifest = demo.train.parent / "labelwise-demo.json"
    written = manifest.stat().st_mtime_ns
    # Its options hold a list: a tuple would never equal the JSON read back, and every call would rewrite.
    assert make_demo("openset", demo.train.parent.parent) == demo
    assert manifest.stat().st_mtime_ns == written


# -- cancer ----------------------------------------------------------------------------------------------
def test_cancer_tables(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["cancer"]
    train, test = _read(demo.train), _read(demo.test)
    features = [name.replace(" ", "_") for name in CANCER.feature_names]
    assert list(train.columns) == [*features, "diagnosis", "is_valid"]
    assert list(test.columns) == [*features, "diagnosis"]
    assert train["is_valid"].dtype == bool and demo.target == ["diagnosis"]
    assert len(train) + len(test) == len(CANCER.target)
    assert abs(len(test) / len(CANCER.target) - 0.20) < 0.01
    assert 0.15 <= train["is_valid"].mean() <= 0.21
    # Every row is one of sklearn's rows, with its diagnosis, and none is in both files.
    both = pd.concat([train, test])
    reference = pd.DataFrame(CANCER.data, columns=features).assign(diagnosis=CANCER.target_names[CANCER.target])
    key = features[:4]
    merged = both.merge(reference, on=key, suffixes=("", "_ref"), validate="one_to_one")
    assert len(merged) == len(CANCER.target)
    assert (merged["diagnosis"] == merged["diagnosis_ref"]).all()
    overall = (CANCER.target == 0).mean()
    for frame in (train[~train["is_valid"]], train[train["is_valid"]], test):
        assert abs((frame["diagnosis"] == "malignant").mean() - overall) < 0.02


def test_cancer_is_binary_with_malignant_positive(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["cancer"]
    task = infer_task(_read(demo.train)["diagnosis"])
    assert task.kind is TaskKind.BINARY and task.positive == "malignant"


def _malignant_per_split(demo: Demo) -> np.ndarray:
    train, test = _read(demo.train), _read(demo.test)
    parts = (train[~train["is_valid"]], train[train["is_valid"]], test)
    return np.array([int((p["diagnosis"] == "malignant").sum()) for p in parts])


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_imbalanced_cancer_keeps_a_fraction_of_malignant_rows(tmp_path: Path, fraction: float) -> None:
    full = _malignant_per_split(make_imbalanced_cancer(tmp_path / "full", positive_fraction=1.0))
    # All 212 malignant rows, split about 64/16/20 by the stratified split.
    assert full.sum() == (CANCER.target == 0).sum()
    assert np.abs(full - np.array([0.64, 0.16, 0.20]) * full.sum()).max() <= 1
    demo = make_imbalanced_cancer(tmp_path / "part", positive_fraction=fraction)
    assert demo.name == "cancer-imbalanced" and demo.headline == "recall"
    np.testing.assert_array_equal(_malignant_per_split(demo), np.maximum(1, np.round(fraction * full)))
    train, test = _read(demo.train), _read(demo.test)
    benign = int((train["diagnosis"] == "benign").sum() + (test["diagnosis"] == "benign").sum())
    assert benign == (CANCER.target == 1).sum()
    assert infer_task(train["diagnosis"]).positive == "malignant"


def test_imbalanced_default_matches_make_demo(tmp_path: Path, built: dict[str, tuple[Demo, float]]) -> None:
    demo = make_imbalanced_cancer(tmp_path)
    assert _tree(demo.train.parent) == _tree(built["cancer-imbalanced"][0].train.parent)


# -- multidigit ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def multidigit(built: dict[str, tuple[Demo, float]]) -> dict[str, pd.DataFrame]:
    demo, _ = built["multidigit"]
    train, test = _read(demo.train), _read(demo.test)
    sources = _read(demo.train.parent / "sources.csv").set_index("fname")
    return {"train": train[~train["is_valid"]], "valid": train[train["is_valid"]], "test": test, "sources": sources}


def test_multidigit_sizes_and_label_sets(multidigit: dict[str, pd.DataFrame]) -> None:
    assert [len(multidigit[s]) for s in ("train", "valid", "test")] == [2400, 600, 800]
    for split in ("train", "valid", "test"):
        sets = [label.split() for label in multidigit[split]["labels"]]
        assert all(len(digits) == len(set(digits)) <= 3 for digits in sets)  # distinct, at most 3
        assert 0.08 <= np.mean([len(d) == 0 for d in sets]) <= 0.12
        sizes = np.bincount([len(d) for d in sets], minlength=4)[1:] / len(sets)
        assert np.all(np.abs(sizes - 0.30) < 0.02)  # the rest spread evenly over 1, 2, 3 digits


def test_multidigit_labels_are_multilabel(built: dict[str, tuple[Demo, float]]) -> None:
    demo, _ = built["multidigit"]
    assert demo.target == ["labels"] and demo.image_col == "fname"
    for path in (demo.train, demo.test):
        task = infer_task(_read(path)["labels"])
        assert task.kind is TaskKind.MULTILABEL and task.classes == tuple(str(d) for d in range(10))


def test_multidigit_sources_do_not_leak(multidigit: dict[str, pd.DataFrame]) -> None:
    sources = multidigit["sources"]["sources"]
    used = {
        split: {int(i) for row in sources[multidigit[split]["fname"]] for i in row.split()}
        for split in ("train", "valid", "test")
    }
    assert used["train"].isdisjoint(used["test"]) and used["valid"].isdisjoint(used["test"])
    assert used["train"].isdisjoint(used["valid"])
    assert len(used["test"]) > 300  # the test canvases draw on many different source images


def _slots(path: Path) -> list[np.ndarray]:
    pixels = np.asarray(Image.open(path), dtype=np.uint8)
    return [pixels[16 * r : 16 * r + 16, 16 * c : 16 * c + 16] for r in (0, 1) for c in (0, 1)]


def test_multidigit_pixels_match_labels_and_do_not_leak(
    built: dict[str, tuple[Demo, float]], multidigit: dict[str, pd.DataFrame]
) -> None:
    folder = built["multidigit"][0].train.parent
    patches = {}
    for split in ("train", "valid", "test"):
        seen: set[bytes] = set()
        frame = multidigit[split]
        drawn = multidigit["sources"]["sources"][frame["fname"]]
        for fname, labels, sources in zip(frame["fname"], frame["labels"], drawn, strict=True):
            filled = [slot for slot in _slots(folder / fname) if slot.any()]
            assert len(filled) == len(labels.split())  # one non-blank slot per labelled digit
            seen.update(slot.tobytes() for slot in filled)
            # Each source digit (by sklearn's own label) is among the canvas's labels.
            assert sorted(str(DIGITS.target[int(i)]) for i in sources.split()) == sorted(labels.split())
        patches[split] = seen
    # Independent of sources.csv: no test patch is pixel-identical to a train/valid patch.
    assert patches["test"].isdisjoint(patches["train"] | patches["valid"])


# -- determinism, reuse, atomic writes -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cancer", "digits", "multidigit", "openset"])
def test_same_seed_same_bytes_other_seed_other_split(
    tmp_path: Path, built: dict[str, tuple[Demo, float]], name: str
) -> None:
    again = make_demo(name, tmp_path / "again", seed=0)
    assert _tree(again.test.parent) == _tree(built[name][0].test.parent)  # every file, byte for byte
    other = make_demo(name, tmp_path / "other", seed=1)
    assert _content(other.test) != _content(again.test)


def _content(path: Path) -> dict[str, str]:
    return _tree(path) if path.is_dir() else {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}


def test_second_call_reuses_and_new_seed_rewrites(tmp_path: Path) -> None:
    demo = make_demo("cancer", tmp_path, seed=0)
    marker = demo.train.parent / "marker.txt"
    marker.write_text("written after the demo")
    assert make_demo("cancer", tmp_path, seed=0) == demo
    assert marker.exists()  # reused, not rewritten
    make_demo("cancer", tmp_path, seed=1)
    assert not marker.exists()
    assert _tree(tmp_path / "cancer") == _tree(make_demo("cancer", tmp_path / "fresh", seed=1).train.parent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cancer", "fresh"]  # no temp folders left


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        pytest.param("cancer", "labelwise.datasets._tables.write_csv", id="cancer"),
        pytest.param("openset", "labelwise.datasets._digits.save_png", id="openset"),
    ],
)
def test_interrupted_build_leaves_previous_demo_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, writer: str
) -> None:
    def crash(content: object, path: Path) -> None:
        path.write_text("half")
        raise KeyboardInterrupt

    before = _tree(make_demo(name, tmp_path / "old", seed=0).train.parent)
    monkeypatch.setattr(writer, crash)
    for root, seed in ((tmp_path / "new", 0), (tmp_path / "old", 1)):
        with pytest.raises(KeyboardInterrupt):
            make_demo(name, root, seed=seed)
    assert list((tmp_path / "new").iterdir()) == []
    assert _tree(tmp_path / "old" / name) == before
    assert [p.name for p in (tmp_path / "old").iterdir()] == [name]


def test_stale_temp_folders_are_removed(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".cancer.tmp-dead", tmp_path / ".cancer.tmp-busy"
    for path in (stale, fresh):
        (path / "cancer").mkdir(parents=True)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    make_demo("cancer", tmp_path)
    assert not stale.exists() and fresh.exists()  # a recent one may belong to a run in progress


def test_numpy_seed_is_the_same_seed(tmp_path: Path) -> None:
    numpy_seeded = make_demo("cancer", tmp_path / "numpy", seed=np.int64(1))  # type: ignore[arg-type]
    assert _tree(numpy_seeded.train.parent) == _tree(make_demo("cancer", tmp_path / "int", seed=1).train.parent)
