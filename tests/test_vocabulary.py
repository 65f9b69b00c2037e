"""Large vocabularies: the class file beside labelwise.json, top-k predictions, ranking metrics, inspect's reports."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import labelwise
from labelwise._class_file import CLASS_FILE_ABOVE, CLASSES_FILE
from labelwise.classifier import Classifier
from labelwise.cli import main
from labelwise.data.inspection import inspect_data
from labelwise.errors import ArtifactError
from labelwise.models import create_network
from labelwise.task import Task

NUM_CLASSES = 300  # above AUTO_TOP_K_ABOVE (256): predict writes top-k columns by itself


def _table(*, rows_per_class: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(NUM_CLASSES), rows_per_class)
    x = np.stack([y % 20, y // 20], axis=1) + rng.normal(scale=0.1, size=(len(y), 2))
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "label": [f"c{i}" for i in y]})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 300-class run (2 epochs) and its table."""
    root = tmp_path_factory.mktemp("vocabulary")
    data = root / "train.csv"
    # Our own is_valid: a seeded stratified split of 3 rows per class falls back to a random one, with a warning.
    _table().assign(is_valid=np.tile([False, False, True], NUM_CLASSES)).to_csv(data, index=False)
    assert main(["train", str(data), "--out", str(root / "run"), "--epochs", "2", "--quiet"]) == 0
    return root / "run", data


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    assert err[0].startswith("labelwise: error: ")
    return err[0]


def test_training_counts_are_recorded_per_class(run: tuple[Path, Path]) -> None:
    meta = json.loads((run[0] / "labelwise.json").read_text())
    counts = meta["train_counts"]
    assert len(counts) == NUM_CLASSES and sum(counts) == meta["training"]["num_train"]
    assert isinstance(meta["task"]["classes"], list)  # 300 <= CLASS_FILE_ABOVE: the list stays in the JSON
    assert labelwise.load(run[0]).train_counts.tolist() == counts  # type: ignore[union-attr]


def test_predict_writes_top_k_columns_above_256_classes(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    capsys.readouterr()
    assert main(["predict", str(run[0]), str(run[1]), "--out", str(out)]) == 0
    assert "300 classes (> 256): predictions.csv gets top1..top5" in capsys.readouterr().err
    pred = pd.read_csv(out, keep_default_na=False)
    tops = [f"top{j}" for j in range(1, 6)] + [f"p_top{j}" for j in range(1, 6)]
    assert list(pred.columns) == ["id", *tops, "prediction", "abstained"]
    probs = pred[[f"p_top{j}" for j in range(1, 6)]].to_numpy()
    assert (np.diff(probs, axis=1) <= 0).all() and (probs.sum(axis=1) <= 1 + 1e-6).all()
    assert (pred["prediction"] == pred["top1"]).all()  # argmax decides, no abstention in this run
    clf = labelwise.load(run[0])
    expected = clf.predict_proba(pd.read_csv(run[1])).argmax(axis=1)
    assert pred["top1"].tolist() == [clf.task.classes[i] for i in expected]


def test_predict_top_k_writes_k_columns_and_the_set(run: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run[0]), str(run[1]), "--out", str(out), "--top-k", "3"]) == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert list(pred.columns) == ["id", "top1", "top2", "top3", "p_top1", "p_top2", "p_top3", "prediction"] + [
        "abstained",
        "set",
    ]
    assert (pred["set"].str.split(" ").map(len) == 3).all()


def test_top_k_above_the_class_count_is_refused_before_predicting(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run[0]), str(run[1]), "--out", str(out), "--top-k", "301"]) == 2
    line = _error_line(capsys)
    assert "--top-k 301 is not a number of classes to rank; expected a whole number from 1 to 300, the" in line
    assert not out.exists()


def test_evaluate_adds_the_ranking_metrics(run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(run[0]), str(run[1]), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "precision@1", "precision@5", "recall@5", "macro_recall@1/head"} <= set(metrics)
    assert metrics["precision@1"] == pytest.approx(metrics["accuracy"])  # single-label P@1 is accuracy
    assert metrics["recall@5"] >= metrics["recall@1"]


def _large(clf: Classifier, classes: tuple[Any, ...]) -> Classifier:
    """``clf`` with another vocabulary: a fresh head of the new width, counts 0..C-1."""
    task = Task(kind="multiclass", classes=classes)
    counts = list(range(len(classes)))
    network = create_network(clf.model_spec, task)
    record = dataclasses.replace(clf.record, train_counts=counts)
    return dataclasses.replace(clf, task=task, network=network, record=record)


@pytest.mark.parametrize(
    "classes",
    [
        pytest.param(tuple(f"c{i}" for i in range(5000)), id="strings"),
        pytest.param(tuple(range(-2500, 2500)), id="ints"),
    ],
)
def test_a_large_vocabulary_goes_to_the_class_file(run: tuple[Path, Path], tmp_path: Path, classes: Any) -> None:
    assert len(classes) > CLASS_FILE_ABOVE
    large = _large(labelwise.load(run[0]), classes)
    large.save(tmp_path / "big")
    meta = json.loads((tmp_path / "big" / "labelwise.json").read_text())
    assert "classes" not in meta["task"] and "train_counts" not in meta
    record = meta["classes"]
    data = (tmp_path / "big" / CLASSES_FILE).read_bytes()
    assert record["file"] == CLASSES_FILE and record["count"] == 5000 and record["bytes"] == len(data)
    back = labelwise.load(tmp_path / "big")
    assert back.task.classes == classes and {type(c) for c in back.task.classes} == {type(classes[0])}
    assert back.train_counts is not None and back.train_counts.tolist() == list(range(5000))
    back.save(tmp_path / "again")  # a loaded large run saves the same way
    assert (tmp_path / "again" / CLASSES_FILE).read_bytes() == data


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        pytest.param(_flip, "does not match the checksum recorded in labelwise.json", id="edited"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:100]), "were truncated|was truncated", id="truncated"),
        pytest.param(lambda p: p.unlink(), "is missing; the run is incomplete", id="missing"),
    ],
)
def test_a_damaged_class_file_is_refused(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, fragment: str
) -> None:
    _large(labelwise.load(run[0]), tuple(f"c{i}" for i in range(2000))).save(tmp_path / "big")
    damage(tmp_path / "big" / CLASSES_FILE)
    with pytest.raises(ArtifactError, match=fragment):
        labelwise.load(tmp_path / "big")
    out = tmp_path / "pred.csv"
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "big"), str(run[1]), "--out", str(out)]) == 2
    assert "classes.parquet" in _error_line(capsys) and not out.exists()


def test_inspect_names_classes_in_one_part_of_the_split_only(tmp_path: Path) -> None:
    frame = _table(rows_per_class=6).iloc[: 6 * 8]  # 8 classes
    is_valid = np.tile([False] * 4 + [True] * 2, 8)
    is_valid[frame["label"].eq("c0").to_numpy()] = True  # c0: validation rows only
    is_valid[frame["label"].eq("c1").to_numpy()] = False  # c1: training rows only
    report = inspect_data(frame.assign(is_valid=is_valid), target="label")
    assert report["split"]["valid_only"] == {"count": 1, "examples": ["c0"]}
    assert report["split"]["train_only"] == {"count": 1, "examples": ["c1"]}
    assert any("1 class has validation rows but no training rows ('c0')" in w for w in report["warnings"])
    assert any("1 class has training rows but no validation rows ('c1')" in w for w in report["warnings"])


def test_inspect_counts_train_only_classes_of_a_stratified_split(tmp_path: Path) -> None:
    # 60 classes of one row each (they cannot be in both parts) and 4 classes of 30 rows.
    labels = [f"s{i}" for i in range(60)] + [f"b{i % 4}" for i in range(120)]
    frame = pd.DataFrame({"x": np.arange(len(labels), dtype=float), "label": labels})
    report = inspect_data(frame, target="label")
    assert report["split"]["train_only"]["count"] + report["split"]["valid_only"]["count"] == 60
    assert len(report["split"]["train_only"]["examples"]) <= 5
    assert not any("training rows but no validation rows" in w for w in report["warnings"])  # the rare finding says it
    assert any("too few to both train on and validate" in w for w in report["warnings"])
