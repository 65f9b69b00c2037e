"""Column kinds as a new user meets them, through every command: one table holding an identifier, a date, a
boolean, a 200-value categorical and a number, read the same way by `inspect`, `train`, `predict` and `serve`.

The label is the parity of the city: only a model that keeps all 200 cities can learn it (one-hot + logistic
regression reaches 1.00; labelwise used to cut the city to its 64 most frequent values and reach 0.69).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelwise import fit, load
from labelwise.cli import main
from labelwise.data.column_kinds import ColumnKind
from labelwise.data.inspection import inspect_data
from labelwise.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings("ignore::labelwise.errors.DataWarning")


def _customers(n: int = 2000, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.integers(0, 200, n)
    return pd.DataFrame(
        {
            "customer_id": rng.permutation(n) + 10_000,
            "signup_date": (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "is_member": rng.choice(["True", "False"], n),
            "city": [f"city_{c:03d}" for c in city],
            "income": rng.normal(50, 10, n).round(2),
            "label": np.where(city % 2 == 0, "even", "odd"),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("kinds")
    frame = _customers()
    frame.iloc[:1600].to_csv(folder / "train.csv", index=False)
    test = frame.iloc[1600:].reset_index(drop=True)
    clf = fit(folder / "train.csv", out=folder / "run", progress=False, epochs=40)
    assert clf is not None
    return folder, test


def test_inspect_names_each_kind_with_its_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _customers().to_csv(tmp_path / "d.csv", index=False)
    assert main(["inspect", str(tmp_path / "d.csv"), "--json"]) == 0
    kinds = json.loads(capsys.readouterr().out)["column_kinds"]
    assert {name: item["kind"] for name, item in kinds.items()} == {
        "customer_id": "identifier",
        "signup_date": "datetime",
        "is_member": "boolean",
        "city": "categorical",
        "income": "numeric",
    }
    assert kinds["customer_id"]["why"].startswith("a different whole number in each of the 1600 rows, named like an id")
    assert kinds["city"]["why"] == "200 distinct values"


def test_a_200_value_categorical_is_learned_whole(trained: tuple[Path, pd.DataFrame]) -> None:
    folder, test = trained
    clf = load(folder / "run")
    accuracy = float((clf.predict(test) == test["label"].to_numpy()).mean())
    assert accuracy >= 0.95
    assert clf.inputs.kinds["customer_id"]["kind"] == "identifier"  # left out: data to predict on may lack it
    assert clf.predict(test.drop(columns="customer_id")) == clf.predict(test)


def test_booleans_give_identical_probabilities_however_they_are_spelled(trained: tuple[Path, pd.DataFrame]) -> None:
    folder, test = trained
    clf = load(folder / "run")
    as_written = clf.predict_proba(test)
    for spelled in ({"True": 1, "False": 0}, {"True": "yes", "False": "no"}, {"True": True, "False": False}):
        np.testing.assert_array_equal(clf.predict_proba(test.assign(is_member=test.is_member.map(spelled))), as_written)


def test_a_value_a_boolean_column_cannot_read_is_refused_by_name(trained: tuple[Path, pd.DataFrame]) -> None:
    folder, test = trained
    with pytest.raises(
        DataError,
        match=r"'is_member' in row 1 \('maybe'\) \(a yes/no column takes true/false, yes/no, 1/0\)\. Expected values "
        r"like those at training",
    ):
        load(folder / "run").predict(test.assign(is_member=["True", "maybe", *test.is_member[2:]]))


def test_the_train_summary_lists_the_kinds(trained: tuple[Path, pd.DataFrame]) -> None:
    from labelwise.report import format_training

    lines = format_training(load(trained[0] / "run"), run_dir=None).splitlines()
    assert "columns    5: 1 identifier (left out), 1 datetime, 1 boolean, 1 categorical, 1 numeric" in lines
    assert any(line.startswith("  signup_date datetime: dates such as") for line in lines)


def test_column_kinds_overrides_and_its_bad_spellings(tmp_path: Path) -> None:
    frame = _customers(200)
    report = inspect_data(frame, column_kinds=["city=ignored", "customer_id=numeric"])
    assert report["column_kinds"]["city"] == {"kind": "ignored", "why": "as given (--column-kinds); left out"}
    assert report["column_kinds"]["customer_id"]["kind"] == "numeric"
    with pytest.raises(ConfigError, match=r"gives 'city' the kind 'categorcal'.*Did you mean 'categorical'\?"):
        inspect_data(frame, column_kinds={"city": "categorcal"})
    with pytest.raises(ConfigError, match=r"names 'ctiy', which is not a feature column.*Did you mean 'city'\?"):
        inspect_data(frame, column_kinds=["ctiy=categorical"])
    with pytest.raises(ConfigError, match=r"entry 'city' is not NAME=KIND"):
        inspect_data(frame, column_kinds=["city"])


def test_every_column_left_out_is_refused_with_each_reason(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(40)], "k": 1, "label": ["a", "b"] * 20})
    with pytest.raises(DataError, match=r"every feature column is left out.*'id': a different value in each of the "
                       r"32 rows; left out.*'k': one value \(1\) in every row.*--column-kinds"):  # fmt: skip
        fit(frame, progress=False, epochs=1)


def test_train_cli_takes_column_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _customers(300).to_csv(tmp_path / "d.csv", index=False)
    code = main(["train", str(tmp_path / "d.csv"), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--column-kinds", "income=ignored", "signup_date=categorical"])  # fmt: skip
    assert code == 0
    kinds = load(tmp_path / "run").inputs.kinds
    assert kinds["income"]["kind"] == "ignored" and kinds["signup_date"]["kind"] == "categorical"


def test_serve_reads_each_kind_as_predict_does(trained: tuple[Path, pd.DataFrame]) -> None:
    from fastapi.testclient import TestClient

    from labelwise.serve import create_app

    folder, test = trained
    clf = load(folder / "run")
    rows = test.drop(columns=["label", "customer_id"]).head(6).to_dict(orient="records")  # the id is not needed
    with TestClient(create_app(clf)) as client:
        served = client.post("/predict", json={"rows": rows})
        as_numbers = client.post("/predict", json={"rows": [{**r, "is_member": int(r["is_member"] == "True")}
                                                            for r in rows]})  # fmt: skip
        maybe = client.post("/predict", json={"rows": [{**rows[0], "is_member": "maybe"}]})
        bad_date = client.post("/predict", json={"rows": [{**rows[0], "signup_date": 20240301}]})
        # A number written as a string (a CSV row read by csv.DictReader) is read as predict reads a CSV cell.
        as_text = client.post("/predict", json={"rows": [{**rows[0], "income": str(rows[0]["income"])}]})
        features = client.get("/metadata").json()["inputs"]["features"]
    assert served.status_code == as_numbers.status_code == 200, served.text
    assert served.json()["predictions"] == as_numbers.json()["predictions"]
    assert as_text.status_code == 200 and as_text.json()["predictions"][0] == served.json()["predictions"][0]
    expected = clf.predict_proba(test.head(6))
    np.testing.assert_allclose([[p["p:even"], p["p:odd"]] for p in served.json()["predictions"]], expected, rtol=1e-6)
    assert maybe.status_code == 400
    assert (
        "boolean feature 'is_member' is 'maybe' in rows[0]; expected true/false, 1/0 or a yes/no string"
        in (maybe.json()["error"])
    )
    assert bad_date.status_code == 400 and "expected a date string such as '2024-03-01'" in bad_date.json()["error"]
    assert [f["type"] for f in features] == ["datetime", "boolean", "categorical", "numeric"]


@pytest.mark.parametrize(
    ("values", "name", "kind", "why"),
    [
        pytest.param(list(np.random.default_rng(0).permutation(500)[:400]), "row", "identifier",
                     "numbers the 400 rows (distinct whole numbers filling their range)", id="row-number"),
        pytest.param([f"{i:06d}" for i in range(40)], "code", "identifier",
                     "a different code in each of the 40 rows, with leading zeros", id="zero-padded"),
        pytest.param(list(np.random.default_rng(0).integers(0, 10**6, 400)), "income", "numeric",
                     "numbers, 400 distinct values", id="spread-integers"),
        pytest.param([0, 1] * 20, "has_kids", "numeric", "numbers, 2 distinct values", id="zero-one-numbers"),
        pytest.param(["Y", "N"] * 20, "member", "boolean", "two values, 'N' and 'Y', read as false/true", id="y-n"),
    ],
)  # fmt: skip
def test_what_numbers_the_rows_is_an_identifier(values: list[object], name: str, kind: str, why: str) -> None:
    from labelwise.data.column_kinds import infer_column_kind

    assert infer_column_kind(pd.Series(values), name) == ColumnKind(kind, why)


def test_day_first_dates_are_read_day_first_in_every_cell() -> None:
    from labelwise.data.tables import TablePreprocessor

    train = pd.DataFrame({"d": ["03/01/2024", "25/04/2024", "2024-02-10", None]})
    table = TablePreprocessor.fit(train, columns=["d"])
    spec = table.specs[0]
    assert spec.kind == "datetime" and "read day first (as 25/04/2024 shows)" in spec.why
    # 3 January, not 1 March: the same reading as 25/04; ISO cells stay ISO.
    same = pd.DataFrame({"d": ["03/01/2024", "2024-01-03"]})
    features = table.transform(same).numpy()
    np.testing.assert_array_equal(features[0], features[1])


def test_a_number_column_of_zeros_and_ones_takes_other_numbers_and_booleans_later() -> None:
    from labelwise.data.tables import TablePreprocessor

    table = TablePreprocessor.fit(pd.DataFrame({"kids": [0, 1, 1, 0]}), columns=["kids"])
    assert table.transform(pd.DataFrame({"kids": [2, 0]})).shape == (2, 1)  # a count of 2 is a number, not refused
    as_bools = table.transform(pd.DataFrame({"kids": [True, False]}))
    np.testing.assert_array_equal(as_bools.numpy(), table.transform(pd.DataFrame({"kids": [1, 0]})).numpy())
