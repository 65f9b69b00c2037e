"""`labelwise inspect` in process: the text report, the --json report, and bad data's one-line answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from labelwise.cli import main

_KEYS = {
    "data", "source", "rows", "task", "why", "classes", "imbalance_ratio", "label_cardinality", "empty_label_rate",
    "split", "rare_classes", "duplicates", "conflicting_labels", "leakage", "unreadable_images", "columns",
    "column_kinds", "text", "warnings",
}  # fmt: skip


def _table(n: int = 60, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"a": rng.normal(size=n), "color": rng.choice(["red", "blue"], n), "label": ["no", "yes"] * (n // 2)}
    )


def _messy(path: Path) -> Path:
    """Rows repeated (one with another label, "maybe"), a constant column and a class of two items."""
    frame = _table().assign(source="lab1")
    frame = pd.concat([frame, frame.iloc[[0, 1]], frame.iloc[[2]].assign(label="maybe")], ignore_index=True)
    frame = pd.concat([frame, _table(2, seed=1).assign(source="lab1", label="rare")], ignore_index=True)
    frame.to_csv(path, index=False)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors exit from inside main
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["inspect", str(_messy(tmp_path / "d.csv"))], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"data        {tmp_path / 'd.csv'} (table, 65 rows)"
    assert lines[1].startswith("task        multiclass")
    assert lines[2].startswith("split       seeded stratified 80/20 split (seed 0): 52 train / 13 validation items")
    assert lines[5:8] == [
        "columns     3: 1 numeric, 1 categorical, 1 ignored (left out)",
        "  color     categorical: 2 distinct values",
        "  source    ignored: one value ('lab1') in every row; left out: nothing to learn from",
    ]
    assert lines[8:10] == ["classes     items  validation", "  maybe         1           0"]
    assert lines[10].startswith("  no           31")
    warnings = [line for line in lines if line.startswith("warning     ")]
    assert len(warnings) == 6, warnings
    fragments = ("imbalanced 31:1", "'maybe' (1 item), 'rare' (2 items)", "3 copies", "different labels", "'source'")
    for fragment in (*fragments, "split: class(es) 'maybe' have a single item"):
        assert any(fragment in line for line in warnings), fragment


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["inspect", str(_messy(tmp_path / "d.csv")), "--json", "--seed", "3"], capsys)
    assert code == 0 and err == ""
    report = json.loads(out)
    assert set(report) == _KEYS
    assert report["rows"] == 65 and report["classes"] == {"maybe": 1, "no": 31, "rare": 2, "yes": 31}
    assert report["split"]["how"] == "seeded stratified 80/20 split (seed 3)"
    assert report["rare_classes"]["to_validate"] == {"maybe": 1, "rare": 2}
    assert report["duplicates"]["examples"] == [[0, 60], [1, 61], [2, 62]]
    assert report["conflicting_labels"]["examples"] == [{"ids": [2, 62], "labels": ["no", "maybe"]}]
    assert report["columns"]["constant"] == ["source"]
    # --seed reaches the split: seed 3 puts copies on both sides (seed 0, in the text report, does not).
    assert report["leakage"]["valid"] == {"items": 2, "of": 13, "examples": [[0, 60], [2, 62]]}
    assert len(report["warnings"]) == 7


def test_json_report_of_an_image_folder_names_unreadable_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "imgs" / name / f"{i}.png")
    (tmp_path / "imgs" / "dog" / "broken.png").write_bytes(b"not a png")
    code, out, err = _run(["inspect", str(tmp_path / "imgs"), "--json"], capsys)
    assert code == 0 and err == ""  # inspect names unreadable images; it does not stop on them
    report = json.loads(out)
    assert report["unreadable_images"] == [{"path": "dog/broken.png", "reason": "not an image format PIL recognizes"}]
    assert any("'dog/broken.png'" in line for line in report["warnings"])


def test_positive_class_by_name_and_by_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "yes" is the majority: its name, not its count, makes it the positive class; --positive picks the other.
    _table().assign(label=["yes", "yes", "no"] * 20).to_csv(tmp_path / "d.csv", index=False)
    code, out, _ = _run(["inspect", str(tmp_path / "d.csv"), "--json"], capsys)
    assert (
        code == 0
        and "positive class 'yes' ('yes' reads as the positive name; pass --positive (positive=) to choose the "
        in (json.loads(out)["why"])
    )
    code, out, _ = _run(["inspect", str(tmp_path / "d.csv"), "--json", "--positive", "no"], capsys)
    assert code == 0 and "positive class 'no' (as given (--positive); 20 of 60 items)" in json.loads(out)["why"]


@pytest.mark.parametrize(
    ("make", "args", "fragment"),
    [
        pytest.param(lambda d: d / "missing.csv", [], "no file or folder at", id="missing-file"),
        pytest.param(lambda d: d / "t.csv", ["--target", "lable"], "Did you mean 'label'", id="unknown-target"),
        pytest.param(lambda d: d / "one.csv", [], "one class", id="single-class"),
        pytest.param(lambda d: d / "empty.csv", [], "holds no rows", id="header-only"),
        pytest.param(lambda d: d / "four.csv", ["--task", "binary"], "binary", id="impossible-task"),
        pytest.param(lambda d: d / "t.csv", ["--seed", "x"], "--seed: invalid int value", id="usage"),
        pytest.param(
            lambda d: d / "t.csv",
            ["--positive", "Yes"],
            "positive='Yes' is not one of the classes ['no', 'yes']; pass one of them, spelled as in the data "
            "(CLI: --positive).",
            id="unknown-positive",
        ),
        pytest.param(
            lambda d: d / "four.csv",
            ["--positive", "a"],
            "positive='a' only applies to binary tasks; this one is multiclass.",
            id="positive-not-binary",
        ),
    ],
)
def test_bad_data_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, args: list[str], fragment: str
) -> None:
    _table().to_csv(tmp_path / "t.csv", index=False)
    _table().assign(label="yes").to_csv(tmp_path / "one.csv", index=False)
    _table().assign(label=list("abcd") * 15).to_csv(tmp_path / "four.csv", index=False)
    (tmp_path / "empty.csv").write_text("a,label\n")
    before = sorted(tmp_path.rglob("*"))
    assert callable(make)
    code, out, err = _run(["inspect", str(make(tmp_path)), *args], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labelwise: error: "), lines
    assert fragment in lines[0] and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before  # inspect writes nothing
