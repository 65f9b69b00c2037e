"""The command line, in process: contracts of train/evaluate/predict/inspect, and every bad input's one-line answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from labelwise._files import file_mode
from labelwise.cli import main


def _table(n: int = 120, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    label = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "color": rng.choice(["red", "blue"], n), "label": label})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny binary run (2 epochs) and its training table."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "train.csv"
    _table().to_csv(data, index=False)
    assert main(["train", str(data), "--out", str(root / "run"), "--epochs", "2", "--quiet"]) == 0
    return root / "run", data


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    assert err[0].startswith("labelwise: error: ")
    return err[0]


def test_train_writes_the_artifact_and_the_summary(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    # A small table is cross-fitted: no checkpoints (it retrains in seconds), the out-of-fold predictions instead.
    assert {p.name for p in run.iterdir()} == {"labelwise.json", "model.safetensors", "out_of_fold.csv", "logs"}
    meta = json.loads((run / "labelwise.json").read_text())
    assert meta["task"]["kind"] == "binary" and meta["decision"]["rule"]["threshold"] is not None


def test_predict_contract(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = trained
    new = _table(10, seed=1).drop(columns=["label"]).assign(key=[f"k{i}" for i in range(10)])
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(tmp_path / "new.csv"), "--out", str(out), "--id-col", "key"]) == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert list(pred.columns) == ["id", "p:no", "p:yes", "prediction", "abstained"]
    assert not pred["abstained"].any()  # this run was not allowed to abstain
    assert pred["id"].tolist() == new["key"].tolist()  # rows keep the input's order
    np.testing.assert_allclose(pred["p:no"] + pred["p:yes"], 1.0, atol=1e-6)
    assert set(pred["prediction"]) <= {"yes", "no"}


def test_predict_ignores_a_target_column_and_numbers_rows(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = trained
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(data), "--out", str(out)]) == 0
    assert pd.read_csv(out)["id"].tolist()[:3] == [0, 1, 2]


def test_evaluate_text_names_the_positive_class(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    run, data = trained
    capsys.readouterr()
    assert main(["evaluate", str(run), str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "positive class 'yes': f1, precision, recall, roc_auc and pr_auc are about it"
    assert any(line.split()[0] == "f1" for line in lines[1:])


def test_evaluate_json(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    run, data = trained
    capsys.readouterr()
    assert main(["evaluate", str(run), str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "f1", "roc_auc", "pr_auc", "precision", "recall"} <= set(metrics)


def test_inspect_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _table().to_csv(tmp_path / "d.csv", index=False)
    assert main(["inspect", str(tmp_path / "d.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "binary" and sum(report["classes"].values()) == 120


# -- bad input: exit 2, one line naming the problem and the fix, nothing written --------------------------
def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("make", "args", "fragment"),
    [
        pytest.param(lambda d: d / "missing.csv", [], "no file or folder at", id="missing-file"),
        pytest.param(lambda d: _write(d / "t.csv", _table()), ["--target", "lable"], "label", id="unknown-target"),
        pytest.param(lambda d: _write(d / "t.csv", _table().assign(label="yes")), [], "one class", id="single-class"),
        pytest.param(
            lambda d: _write(d / "t.csv", _table().assign(label=["yes", None] * 60)),
            [],
            "missing or empty",
            id="missing-labels",
        ),
        pytest.param(lambda d: _write(d / "t.csv", _table().iloc[:0]), [], "empty", id="empty-table"),
        pytest.param(
            lambda d: _write(d / "t.csv", _table()),
            ["--allow-none", "--coverage", "1.5"],
            "--coverage 1.5; expected a fraction in (0, 1)",
            id="coverage-outside-0-1",
        ),
        pytest.param(
            lambda d: _write(d / "t.csv", _table()),
            ["--task", "multilabel", "--allow-none"],
            "already answers none when no label passes its threshold",
            id="allow-none-on-multilabel",
        ),
        pytest.param(lambda d: _write(d / "t.csv", _table()), ["--metric", "f3"], "'f3'", id="unknown-metric"),
        pytest.param(
            lambda d: _write(d / "t.csv", _table()),
            ["--conformal", "0.99", "--folds", "1"],
            "--conformal 0.99 needs at least 99 validation items",
            id="conformal-needs-more-rows",
        ),
        pytest.param(
            lambda d: _write(d / "t.csv", _table()), ["--coverage", "0.9"], "add --allow-none", id="coverage-alone"
        ),
        pytest.param(lambda d: _write(d / "t.csv", _table()), ["--top-k", "2"], "multiclass", id="top-k-binary"),
    ],
)
def test_train_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, args: list[str], fragment: str
) -> None:
    data = make(tmp_path)  # type: ignore[operator]
    before = sorted(tmp_path.rglob("*"))
    code = main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet", *args])
    assert code == 2
    assert fragment in _error_line(capsys)
    assert sorted(tmp_path.rglob("*")) == before  # no run directory, no staging left behind


def test_evaluate_with_unseen_label(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    data = _write(tmp_path / "t.csv", _table(20).assign(label=["maybe"] * 2 + ["yes"] * 18))
    assert main(["evaluate", str(run), str(data)]) == 2
    assert "never trained on: 'maybe'" in _error_line(capsys)


def test_predict_with_different_feature_columns(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    data = _write(tmp_path / "t.csv", _table(20).rename(columns={"b": "B"}))
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(data), "--out", str(out)]) == 2
    assert "'b'" in _error_line(capsys)
    assert not out.exists()


def test_corrupt_image_is_named_and_can_be_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    for label in ("circle", "square"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(30):
            pixels = (rng.random((16, 16)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    (tmp_path / "imgs" / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    # Noise images teach nothing: the guards would rightly warn that the model collapsed.
    args = [
        "train",
        str(tmp_path / "imgs"),
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "1",
        "--quiet",
        "--guards",
        "off",
    ]
    assert main(args) == 2
    line = _error_line(capsys)
    assert "broken.png" in line and "--skip-bad-images" in line
    assert not (tmp_path / "run").exists()
    assert main([*args, "--skip-bad-images"]) == 0
    assert "1 unreadable images" in capsys.readouterr().out


def test_console_script_smoke(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "labelwise.cli", "train", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("labelwise: error:") and "Traceback" not in result.stderr


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`labelwise inspect data.csv | head -1`: no "internal error", no "Exception ignored", the shell's SIGPIPE code."""
    data = tmp_path / "data.csv"
    pd.DataFrame({"x": np.arange(100.0), "label": ["a", "b"] * 50}).to_csv(data, index=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "labelwise.cli", "inspect", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # before the command writes anything: its first write meets a closed pipe
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 141, stderr
    assert stderr == ""


def test_timm_model_by_name_and_missing_pretrained_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(30):
            Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(
                tmp_path / "imgs" / label / f"{i}.png"
            )
    args = ["train", str(tmp_path / "imgs"), "--model", "resnet18", "--epochs", "1", "--quiet"]
    assert main([*args, "--pretrained", "--out", str(tmp_path / "pre")]) == 2
    assert "pretrained weights for 'resnet18'" in _error_line(capsys)
    assert not (tmp_path / "pre").exists()
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "labelwise.json").read_text())["model"]["backbone"] == "resnet18"
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "imgs"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 60


def test_a_run_that_may_abstain_predicts_and_evaluates_with_its_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 2))
    label = np.array(["a", "b", "c", "d"])[(x[:, 0] > 0) * 2 + (x[:, 1] > 0)]
    data = _write(tmp_path / "t.csv", pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "label": label}))
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--epochs", "2", "--quiet", "--allow-none", "--conformal", "0.8"]
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert "abstain when 1 - max prob >" in summary and "APS prediction sets" in summary
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(data), "--out", str(out), "--top-k", "2"]) == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert list(pred.columns)[-4:] == ["prediction", "abstained", "unknown_score", "set"]
    assert pred["set"].str.split(" ").map(len).eq(2).all()  # --top-k replaced the conformal sets
    assert (pred.loc[pred["abstained"], "prediction"] == "").all() and pred["abstained"].any()
    unseen = _write(tmp_path / "u.csv", pd.read_csv(data).assign(label=["e"] * 40 + list(label[40:])))
    capsys.readouterr()
    assert main(["evaluate", str(run), str(unseen), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["unknown_items"] == 40 and "unknown_auroc" in metrics and "set_coverage" in metrics


def test_predict_top_k_the_task_cannot_give_is_refused(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, data = trained
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(data), "--out", str(out), "--top-k", "2"]) == 2
    assert "--top-k is for multiclass tasks; this one is binary. Drop --top-k" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["--coverage", "abc"], "argument --coverage: invalid float value: 'abc'", id="not-a-number"),
        pytest.param(["--allow-none", "entropy"], "argument --allow-none: invalid choice: 'entropy'", id="choice"),
    ],
)
def test_usage_mistakes_are_one_line_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    data = _write(tmp_path / "t.csv", _table())
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(data), "--out", str(tmp_path / "run"), *args])
    assert exit_info.value.code == 2
    line = _error_line(capsys)
    assert line.startswith(f"labelwise: error: train: {fragment}") and "see `labelwise train --help`" in line
    assert line.count("labelwise") == 2  # one prefix, and the --help hint; not "labelwise: error: labelwise train:"
    assert not (tmp_path / "run").exists()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from labelwise import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"labelwise {__version__}\n"


def test_progress_off_a_terminal_is_one_line_per_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "t.csv", _table())
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "3", "--folds", "1"]) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("train_loss" in line and "val_loss" in line for line in epochs)
    assert "\r" not in err and "it/s" not in err  # no progress-bar redraws in a log
    weights = tmp_path / "run" / "model.safetensors"
    assert weights.stat().st_mode & 0o777 == file_mode()  # readable like any file the user writes, not 0600


def test_a_cross_fitted_run_reports_one_line_per_member(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "t.csv", _table())
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "3", "--folds", "3"]) == 0
    err = capsys.readouterr().err
    members = [line.split("  ")[0] for line in err.splitlines() if line.startswith("member ")]
    assert members == ["member 1/3", "member 2/3", "member 3/3"] and "\r" not in err


def test_check_a_run(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    run, data = trained
    capsys.readouterr()
    assert main(["check", str(run), str(data)]) == 0
    assert capsys.readouterr().out.startswith("no problems found")
    assert main(["check", str(run), str(data), "--json", "--rows", "32"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_check_with_no_rows(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    run, data = trained
    assert main(["check", str(run), str(data), "--rows", "0"]) == 2
    assert "rows=0; expected a number of rows >= 1" in _error_line(capsys)


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(["1.0", "2.0", "10.0"], id="integral-floats"),
        pytest.param(["007", "010", "100"], id="leading-zeros"),
    ],
)
def test_labels_come_back_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str], written: list[str]) -> None:
    # pandas would read 1.0/2.0/10.0 as the numbers 1/2/10 and 007 as 7; the classes are the text in the file,
    # in numeric order (10.0 after 2.0, not between 1.0 and 2.0 as text sorts).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    label = np.array(written)[np.digitize(x[:, 0], [-0.5, 0.5])]
    data = tmp_path / "t.csv"
    data.write_text("x0,x1,label\n" + "".join(f"{a:.4f},{b:.4f},{c}\n" for (a, b), c in zip(x, label, strict=True)))
    run, out = tmp_path / "run", tmp_path / "pred.csv"
    assert main(["train", str(data), "--out", str(run), "--epochs", "3", "--quiet", "--guards", "off"]) == 0
    assert json.loads((run / "labelwise.json").read_text())["task"]["classes"] == written
    assert main(["predict", str(run), str(data), "--out", str(out)]) == 0
    pred = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(pred.columns)[1:4] == [f"p:{c}" for c in written]
    assert set(pred["prediction"]) <= set(written) and len(set(pred["prediction"])) > 1
    capsys.readouterr()
    assert main(["evaluate", str(run), str(data), "--json"]) == 0  # the file's labels are the run's classes
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.5
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import labelwise
    from labelwise.serve import create_app

    with TestClient(create_app(labelwise.load(run))) as client:
        response = client.post("/predict", json={"rows": [{"x0": -2.0, "x1": 0.0}, {"x0": 2.0, "x1": 0.0}]})
        assert client.get("/metadata").json()["classes"] == written
    assert [row["prediction"] for row in response.json()["predictions"]] == [written[0], written[2]]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 3-class run trained with --top-k 3 (every class: the upper bound is valid at training too)."""
    root = tmp_path_factory.mktemp("top-k")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    frame = pd.DataFrame(
        {"x0": x[:, 0], "x1": x[:, 1], "label": np.array(list("abc"))[np.digitize(x[:, 0], [-0.5, 0.5])]}
    )
    data = _write(root / "t.csv", frame)
    args = ["train", str(data), "--out", str(root / "run"), "--epochs", "2", "--quiet", "--guards", "off"]
    assert main([*args, "--top-k", "3"]) == 0
    return root / "run", data


@pytest.mark.parametrize("k", [1, 3], ids=["one", "every-class"])
def test_predict_top_k_adds_columns_beside_one_per_class(
    three_classes: tuple[Path, Path], tmp_path: Path, k: int
) -> None:
    # design.md's contract: up to 256 classes the p:<class> columns stay; --top-k K adds top1..topK, p_top1..p_topK.
    run, data = three_classes
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(data), "--out", str(out), "--top-k", str(k)]) == 0
    pred = pd.read_csv(out, keep_default_na=False)
    ranks = [f"top{j}" for j in range(1, k + 1)] + [f"p_top{j}" for j in range(1, k + 1)]
    assert list(pred.columns) == ["id", "p:a", "p:b", "p:c", *ranks, "prediction", "abstained", "set"]
    assert (pred["top1"] == pred[["p:a", "p:b", "p:c"]].idxmax(axis=1).str[2:]).all()
    assert pred["set"].str.split(" ").map(len).eq(k).all()


@pytest.mark.parametrize("k", [0, 4], ids=["zero", "above-the-classes"])
def test_predict_top_k_outside_one_to_the_classes_is_one_message(
    three_classes: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], k: int
) -> None:
    run, data = three_classes
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(data), "--out", str(out), "--top-k", str(k)]) == 2
    assert _error_line(capsys) == (
        f"labelwise: error: --top-k {k} is not a number of classes to rank; expected a whole number from 1 to 3, the "
        "number of classes. Pass --top-k (top_k=) in that range."
    )
    assert not out.exists()


def test_train_top_k_above_the_classes_is_the_same_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "t.csv", _table().assign(label=list("abc") * 40))
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--top-k", "4", "--quiet"]) == 2
    assert _error_line(capsys) == (
        "labelwise: error: --top-k 4 is not a number of classes to rank; expected a whole number from 1 to 3, the "
        "number of classes. Pass --top-k (top_k=) in that range."
    )
    assert not (tmp_path / "run").exists()


def test_python_api_and_serve_follow_the_same_top_k_rule(three_classes: tuple[Path, Path]) -> None:
    import labelwise
    from labelwise.data.sources import source_from_frame
    from labelwise.errors import ConfigError

    run, data = three_classes
    clf = labelwise.load(run)
    source = source_from_frame(pd.read_csv(data).drop(columns=["label"]).head(5))
    frame = clf.predictions_frame(source, top_k=3)
    assert list(frame.columns)[1:10] == ["p:a", "p:b", "p:c", "top1", "top2", "top3", "p_top1", "p_top2", "p_top3"]
    for k in (0, 4):
        with pytest.raises(ConfigError, match=rf"^--top-k {k} is not a number of classes to rank; .* from 1 to 3, "):
            clf.predictions_frame(source, top_k=k)
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from labelwise.serve import create_app

    with TestClient(create_app(clf)) as client:  # the run's --top-k 3 sets; one p: column per class stays
        rows = client.post("/predict", json={"rows": [{"x0": 0.0, "x1": 0.0}]}).json()["predictions"]
    assert list(rows[0]) == ["id", "p:a", "p:b", "p:c", "prediction", "abstained", "set"]
    assert sorted(rows[0]["set"].split(" ")) == ["a", "b", "c"]  # joined like predictions.csv
