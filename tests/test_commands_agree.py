"""One reader, one set of checks (issue 18): `train`, `inspect`, `predict`, `evaluate`, `serve` and the Python API
read a table the same way, and answer the same input with the same words.

- A ``;``-separated CSV whose numbers use decimal commas reads as its decimal-point twin, in every command.
- A column the model was not trained on (an id, the label, a note) is ignored everywhere, `serve` included.
- Text in a numeric column is refused by `predict` (a CSV cell) and `serve` (a JSON value) in the same words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer

import labelwise
from _factories import make_table
from labelwise.cli import main
from labelwise.data.inspection import inspect_data
from labelwise.serve import create_app
from labelwise.train import TrainConfig

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


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary run (2 epochs) on ``x0``, ``x1`` and ``color``."""
    run = tmp_path_factory.mktemp("agree") / "run"
    data = make_table(120)[["x0", "x1", "color", "binary"]]
    labelwise.fit(data, target="binary", config=TrainConfig(epochs=2), progress=False, out=run)
    return run


def _rows(n: int = 8) -> pd.DataFrame:
    return make_table(n, seed=1)[["x0", "x1", "color", "binary"]].fillna({"x0": 0.0})


def test_extra_columns_are_ignored_by_every_command(small_run: Path, tmp_path: Path) -> None:
    plain = _rows()
    extra = plain.assign(row_id=[f"r{i}" for i in range(len(plain))], note="checked", colour="blue")
    for name, frame in (("plain", plain), ("extra", extra)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        assert main(["predict", str(small_run), str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / name)]) == 0
    expected = pd.read_csv(tmp_path / "plain")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "extra"), expected)
    clf = labelwise.load(small_run)
    np.testing.assert_array_equal(clf.predict_proba(extra), clf.predict_proba(plain))
    assert clf.evaluate(extra, target="binary") == clf.evaluate(plain, target="binary")
    assert clf.evaluate(tmp_path / "extra.csv") == clf.evaluate(tmp_path / "plain.csv")
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in extra.to_dict(orient="records")]
    with TestClient(create_app(clf)) as client:
        response = client.post("/predict", json={"rows": records})
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    np.testing.assert_allclose(served["p:yes"], expected["p:yes"], rtol=1e-6)
    assert served["prediction"].tolist() == expected["prediction"].tolist()


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labelwise: error: "), lines
    return lines[0]


@pytest.mark.parametrize(
    ("cells", "key"),
    [
        pytest.param({1: "tall"}, "'x1' in row 1 ('tall')", id="one-cell"),
        pytest.param({1: "tall", 4: "n.a.", 6: "tall"}, "'x1' in rows 1, 4, 6 ('tall', 'n.a.')", id="three-cells"),
    ],
)
def test_text_in_a_numeric_column_is_refused_in_the_same_words_by_predict_and_serve(
    small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cells: dict[int, str], key: str
) -> None:
    frame = _rows().drop(columns="binary").astype({"x1": object})
    for row, value in cells.items():
        frame.loc[row, "x1"] = value
    frame.to_csv(tmp_path / "bad.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(small_run), str(tmp_path / "bad.csv"), "--out", str(tmp_path / "out.csv")]) == 2
    from_predict = _one_line_error(capsys)
    assert not (tmp_path / "out.csv").exists()  # nothing half-written
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    with TestClient(create_app(labelwise.load(small_run))) as client:
        response = client.post("/predict", json={"rows": records})
    assert response.status_code == 400
    from_serve = response.json()["error"]
    wording = f"numeric feature columns hold values that are not numbers: {key}"
    assert wording in from_predict and wording in from_serve, (from_predict, from_serve)
