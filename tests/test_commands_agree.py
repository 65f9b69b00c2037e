"""One reader, one set of checks (issue 18): `train`, `inspect`, `predict`, `evaluate`, `serve` and the Python API
read a table the same way, and answer the same input with the same words.

- A ``;``-separated CSV whose numbers use decimal commas reads as its decimal-point twin, in every command.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import labelwise
from labelwise.cli import main
from labelwise.data.inspection import inspect_data

AREAS = ["mean area", "worst area"]  # values over 1,000: written with thousands points, as a spreadsheet does


def _decimal_commas(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as a European spreadsheet exports it: ``;`` between fields, ``17,99``, ``1.001,0``."""
    out = frame.copy()
    for name in AREAS:
        out[name] = [f"{value:,.1f}".translate(str.maketrans(",.", ".,")) for value in frame[name]]
    out.to_csv(path, sep=";", decimal=",", index=False)


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained (3 epochs) on 70 % of breast cancer written with decimal commas; beside it the other 30 % in
    both notations (``test.csv``, ``test_points.csv``) and the training part with points (``train_points.csv``)."""
    root = tmp_path_factory.mktemp("decimal-commas")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target").assign(diagnosis=np.where(data.target == 1, "benign", "malignant"))
    test = np.random.default_rng(0).random(len(frame)) < 0.3
    _decimal_commas(frame[~test], root / "train.csv")
    _decimal_commas(frame[test], root / "test.csv")
    frame[~test].to_csv(root / "train_points.csv", index=False)
    frame[test].to_csv(root / "test_points.csv", index=False)
    assert "1.001,0" in (root / "train.csv").read_text()  # the file really holds what the test is about
    args = ["train", str(root / "train.csv"), "--target", "diagnosis", "--out", str(root / "run"), "--epochs", "3"]
    assert main([*args, "--quiet"]) == 0
    return root


def test_decimal_commas_train_numeric_columns_that_score_on_held_out_rows(
    cancer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    columns = json.loads((cancer / "run" / "labelwise.json").read_text())["preprocessing"]["columns"]
    assert [column["type"] for column in columns] == ["numeric"] * 30  # read as strings: 'categorical'
    capsys.readouterr()
    assert main(["evaluate", str(cancer / "run"), str(cancer / "test.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["roc_auc"] >= 0.97  # read as strings: 0.62-0.92


def test_predict_reads_decimal_commas_as_decimal_points(cancer: Path, tmp_path: Path) -> None:
    run = cancer / "run"
    for name in ("test", "test_points"):
        assert main(["predict", str(run), str(cancer / f"{name}.csv"), "--out", str(tmp_path / f"{name}.out")]) == 0
    commas, points = (pd.read_csv(tmp_path / f"{name}.out") for name in ("test", "test_points"))
    pd.testing.assert_frame_equal(commas, points)
    clf = labelwise.load(run)
    np.testing.assert_array_equal(clf.predict_proba(cancer / "test.csv"), clf.predict_proba(cancer / "test_points.csv"))


def test_inspect_reads_decimal_commas_as_decimal_points(cancer: Path) -> None:
    # The whole report is the decimal-point file's (the column kinds too, once inspect reports them).
    commas, points = (inspect_data(cancer / name, target="diagnosis") for name in ("train.csv", "train_points.csv"))
    assert {**commas, "data": None} == {**points, "data": None}


def test_inspect_compares_decimal_commas_as_numbers(tmp_path: Path) -> None:
    # Read as text, "2,50" and "2,5" (or "1.000,0" and "1000") would be different values.
    lines = ["x;label", *(f"{i},5;{'ab'[i % 2]}" for i in range(20)), "2,50;a", "1.000,0;b", "1000;b"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    duplicates = inspect_data(tmp_path / "t.csv")["duplicates"]
    assert (duplicates["items"], duplicates["examples"]) == (2, [[2, 20], [21, 22]])
