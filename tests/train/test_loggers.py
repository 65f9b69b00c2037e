"""Training loggers (`--logger`): CSV always, TensorBoard event files and an MLflow run in the run directory."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labelwise
from labelwise.cli import main
from labelwise.errors import ConfigError, TrainingError
from labelwise.train import TrainConfig

_EPOCHS = 3


def _table(path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": np.where(x[:, 0] > 0, "yes", "no")}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(("csv",), ("csv",), id="default"),
        pytest.param(["tensorboard"], ("csv", "tensorboard"), id="csv-always-on"),
        pytest.param(("mlflow", "csv", "mlflow"), ("csv", "mlflow"), id="no-repeats"),
    ],
)
def test_loggers_always_include_csv(given: tuple[str, ...], expected: tuple[str, ...]) -> None:
    config = TrainConfig(loggers=tuple(given))
    assert config.loggers == expected
    assert TrainConfig.from_dict(config.to_dict()) == config  # round trip through labelwise.json


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param(
            ("tensorbord",),
            r"unknown logger 'tensorbord' \(did you mean 'tensorboard'\?\); expected some of "
            r"csv, tensorboard, mlflow \(`--logger csv tensorboard`\)",
            id="typo",
        ),
        pytest.param("csv", r"loggers='csv'; expected a list of names among csv, tensorboard, mlflow", id="a-string"),
    ],
)
def test_bad_logger_names_are_refused(given: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(loggers=given)  # type: ignore[arg-type]


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(
        ConfigError, match=r'--logger mlflow needs the mlflow package.*pip install "labelwise\[loggers\]"'
    ):
        TrainConfig(loggers=("mlflow",))


def test_cli_bad_logger_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _table(tmp_path / "t.csv")
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--quiet", "--logger", "mlfow"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "unknown logger 'mlfow' (did you mean 'mlflow'?)" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_tensorboard_and_mlflow_log_into_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _table(tmp_path / "t.csv")
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--quiet", "--epochs", str(_EPOCHS), "--logger", "tensorboard"]
    assert main([*args, "mlflow"]) == 0
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # lifted for training only
    assert len(pd.read_csv(run / "logs" / "metrics.csv").dropna(subset=["val_loss"])) == _EPOCHS  # CSV still on
    events = list((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(events[0].parent)).Reload().Tags()["scalars"]
    assert {"train_loss", "val_loss"} <= set(scalars)
    assert _mlflow_val_losses(run / "mlruns") == _EPOCHS


def _mlflow_val_losses(store: Path) -> int:
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # reading a file store needs it as much as writing one
    try:
        client = MlflowClient(tracking_uri=f"file:{store}")
        experiment = client.get_experiment_by_name("labelwise")
        assert experiment is not None
        (found,) = client.search_runs([experiment.experiment_id])
        assert found.info.run_name == "run" and found.info.status == "FINISHED"
        return len(client.get_metric_history(found.info.run_id, "val_loss"))
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE")


def test_resuming_with_other_loggers_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _table(tmp_path / "t.csv")
    run = tmp_path / "run"

    def fails(*args: object, **kwargs: object) -> None:
        raise TrainingError("stopped after training, for the test")

    with monkeypatch.context() as patched:
        patched.setattr("labelwise.heads.dense.fit_temperature", fails)
        with pytest.raises(TrainingError, match="for the test"):
            labelwise.fit(data, out=run, config=TrainConfig(epochs=2, folds=1), progress=False)
    assert (tmp_path / "run.partial" / "checkpoints" / "last.ckpt").is_file()
    config = TrainConfig(epochs=2, folds=1, loggers=("tensorboard",))
    labelwise.fit(data, out=run, config=config, progress=False, resume=True)
    assert list((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))
