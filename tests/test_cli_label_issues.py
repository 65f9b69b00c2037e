"""`labelwise inspect --label-issues` in process: the text and JSON output, and the refusals (exit 2, one line, nothing
written)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelwise.cli import main
from labelwise.data import stream_prep

_INSPECT_KEYS = {
    "data", "source", "rows", "task", "why", "classes", "imbalance_ratio", "label_cardinality", "empty_label_rate",
    "split", "rare_classes", "duplicates", "conflicting_labels", "leakage", "unreadable_images", "columns",
    "column_kinds", "text", "warnings",
}  # fmt: skip
_FLIPPED = [3, 30, 61, 95]


def _blobs(n: int = 120, *, seed: int = 0) -> pd.DataFrame:
    """Three well separated classes in two numeric columns; the rows in `_FLIPPED` carry the next class's name."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 3
    x = rng.normal(size=(n, 2)) * 0.5 + np.array([[0, 0], [4, 0], [0, 4]])[truth]
    given = truth.copy()
    flipped = [row for row in _FLIPPED if row < n]
    given[flipped] = (truth[flipped] + 1) % 3
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.array(["ant", "bee", "cat"])[given]})


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors exit from inside main
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: whatever inspect would write lands where the test looks."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_text_lists_the_planted_errors(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _blobs().to_csv("d.csv", index=False)
    code, out, err = _run(["inspect", "d.csv", "--target", "y", "--label-issues"], capsys)
    assert code == 0, err
    assert _files(workdir) == ["d.csv"]  # nothing written: no run folder, no logs
    section = out.split("\n\n", 1)[1].splitlines()
    assert section[0].startswith("likely label errors: ")
    assert section[1].split() == ["row", "given", "suggested", "score"]
    shown = [line.split() for line in section[2:]]
    # Confident learning flags another class only where its probability reaches that class's average confidence
    # (about 0.97 on these clean blobs), so a few errors the model is less sure of go unlisted; those listed are
    # planted ones.
    assert 2 <= len(shown) <= 10
    assert {int(cells[0]) for cells in shown} <= set(_FLIPPED)
    frame = _blobs()
    for row, given, suggested, _ in shown:
        assert given == frame["y"][int(row)] and suggested != given


def test_json_adds_every_issue(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _blobs().to_csv("d.csv", index=False)
    code, out, err = _run(["inspect", "d.csv", "--target", "y", "--label-issues", "--json", "--folds", "4"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == _INSPECT_KEYS | {"label_issues"}
    issues = report["label_issues"]
    assert all(set(issue) == {"row", "given", "suggested", "score"} for issue in issues)
    assert all(
        isinstance(i["row"], int) and isinstance(i["given"], str) and isinstance(i["suggested"], str) for i in issues
    )
    scores = [issue["score"] for issue in issues]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    # The planted errors come first. A clean row may follow: row 119 (cat, at -1.55, 3.43) sits beside planted row
    # 95 (a cat labelled ant, at -0.97, 3.35), and a member that fits row 95's label can call 119 an ant too.
    listed = [issue["row"] for issue in issues]
    assert len(listed) >= 2 and set(listed[:2]) <= set(_FLIPPED)
    assert len(set(listed) - set(_FLIPPED)) <= 1


def test_validation_rows_are_checked_too(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An is_valid column splits a run; label errors are sought in every row, whichever side it is on."""
    _blobs().assign(is_valid=np.arange(120) >= 60).to_csv("d.csv", index=False)
    code, out, err = _run(["inspect", "d.csv", "--target", "y", "--label-issues", "--json"], capsys)
    assert code == 0, err
    rows = {issue["row"] for issue in json.loads(out)["label_issues"]}
    assert rows <= set(_FLIPPED) and rows & {3, 30} and rows & {61, 95}


def test_json_without_the_flag_is_unchanged(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _blobs().to_csv("d.csv", index=False)
    code, out, _ = _run(["inspect", "d.csv", "--target", "y", "--json"], capsys)
    assert code == 0 and set(json.loads(out)) == _INSPECT_KEYS


def test_multilabel_sets_as_written(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    sets = [" ".join(tag for tag, on in (("hot", a > 0), ("wet", b > 0)) if on) for a, b in x]
    sets[7] = "hot wet" if sets[7] == "" else ""  # planted: the opposite of what the features say
    pd.DataFrame({"a": x[:, 0] * 3, "b": x[:, 1] * 3, "tags": sets}).to_csv("m.csv", index=False)
    code, out, err = _run(["inspect", "m.csv", "--target", "tags", "--task", "multilabel", "--label-issues", "--json"],
                          capsys)  # fmt: skip
    assert code == 0, err
    issues = json.loads(out)["label_issues"]
    assert issues[0]["row"] == 7 and issues[0]["given"] == sets[7]
    assert set(issues[0]["suggested"].split()) <= {"hot", "wet"} and issues[0]["suggested"] != sets[7]


@pytest.mark.parametrize(
    ("frame", "argv", "fragment"),
    [
        pytest.param(
            _blobs(12),
            [],
            "--label-issues on 12 rows: finding label errors cross-fits 5 models, .* needs at least 20 rows",
            id="too-few-rows",
        ),
        pytest.param(
            pd.concat([_blobs(60), _blobs(3).assign(y="dog")], ignore_index=True),
            [],
            r"--label-issues with --folds 5 needs at least 5 items of every class, .* 1 class\(es\) have fewer: "
            r"'dog' \(3\). Pass --folds 3 \(K >= 2\)",
            id="rare-class",
        ),
        pytest.param(
            pd.concat([_blobs(60), _blobs(6).assign(y="dog")], ignore_index=True),
            ["--folds", "7"],
            r"--label-issues with --folds 7 needs at least 7 items of every class, .*'dog' \(6\). Pass --folds 6",
            id="rare-class-for-given-folds",
        ),
        pytest.param(
            _blobs(),
            ["--folds", "1"],
            "--folds 1 with --label-issues; finding label errors cross-fits at least 2 models.*Pass --folds 5",
            id="one-fold",
        ),
    ],
)
def test_refusals(
    workdir: Path, capsys: pytest.CaptureFixture[str], frame: pd.DataFrame, argv: list[str], fragment: str
) -> None:
    frame.to_csv("d.csv", index=False)
    code, out, err = _run(["inspect", "d.csv", "--target", "y", "--label-issues", *argv], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("labelwise: error: ")
    assert re.search(fragment, err), err
    assert _files(workdir) == ["d.csv"]


def test_folds_without_label_issues(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _blobs().to_csv("d.csv", index=False)
    code, out, err = _run(["inspect", "d.csv", "--target", "y", "--folds", "3"], capsys)
    assert (code, out) == (2, "")
    assert "--folds 3 without --label-issues: inspect trains nothing unless asked" in err
    assert "Add --label-issues, or drop --folds." in err


def test_streamed_source_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _blobs().to_parquet("big.parquet")
    monkeypatch.setattr(stream_prep, "_available_memory", lambda: 1_000)  # as if the table outgrew memory
    code, out, err = _run(["inspect", "big.parquet", "--target", "y", "--label-issues"], capsys)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert "'big.parquet': it is larger than labelwise reads into memory (training would stream it)" in err
    assert "Inspect a sample of the rows instead" in err and "or drop --label-issues" in err
    assert _files(workdir) == ["big.parquet"]
