"""The run directory: atomic replacement, no pickles, checksummed weights, clear errors on damaged runs."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import labelwise
from labelwise import artifact
from labelwise.errors import ArtifactError
from labelwise.train import TrainConfig


def _write_run(path: Path, value: float) -> None:
    with artifact.staging_dir(path) as stage:
        artifact.save_artifact(stage, state_dict={"w": torch.full((2,), value)}, metadata={"note": value})


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    _write_run(tmp_path / "run", 1.5)
    assert artifact.load_metadata(tmp_path / "run")["note"] == 1.5
    meta = artifact.load_metadata(tmp_path / "run")
    torch.testing.assert_close(artifact.load_weights(tmp_path / "run", meta)["w"], torch.full((2,), 1.5))


def test_the_weights_checksum_is_the_sha256_of_the_file(tmp_path: Path) -> None:
    _write_run(tmp_path / "run", 1.5)
    record = artifact.load_metadata(tmp_path / "run")["weights"]
    data = (tmp_path / "run" / artifact.WEIGHTS_FILE).read_bytes()
    assert record == {"file": artifact.WEIGHTS_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_failed_write_keeps_the_previous_run_and_leaves_no_staging(tmp_path: Path) -> None:
    _write_run(tmp_path / "run", 1.0)
    with pytest.raises(RuntimeError, match="boom"), artifact.staging_dir(tmp_path / "run") as stage:
        (stage / artifact.WEIGHTS_FILE).write_bytes(b"half")
        raise RuntimeError("boom")
    assert artifact.load_metadata(tmp_path / "run")["note"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_failed_first_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), artifact.staging_dir(tmp_path / "run"):
        raise RuntimeError("crash before anything was saved")
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_the_run(tmp_path: Path) -> None:
    _write_run(tmp_path / "run", 1.0)
    _write_run(tmp_path / "run", 2.0)
    assert artifact.load_metadata(tmp_path / "run")["note"] == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        pytest.param(lambda run: None, "does not exist", id="missing"),
        pytest.param(lambda run: run.mkdir(), "holds no labelwise.json", id="empty-folder"),
        pytest.param(
            lambda run: (run.mkdir(), (run / "labelwise.json").write_text("{")), "not valid JSON", id="bad-json"
        ),
        pytest.param(
            lambda run: (run.mkdir(), (run / "labelwise.json").write_text(json.dumps({"format_version": 99}))),
            "format_version 99",
            id="future-version",
        ),
        pytest.param(
            lambda run: (run.mkdir(), (run / "labelwise.json").write_text(json.dumps({"format_version": 1}))),
            "format_version 1",
            id="version-without-checksums",
        ),
        pytest.param(
            lambda run: (run.mkdir(), (run / "labelwise.json").write_text(json.dumps({"format_version": 2}))),
            "records no SHA-256",
            id="no-checksum",
        ),
        pytest.param(lambda run: (run.mkdir(), (run / "labelwise.json").write_text("[2]")), "JSON list", id="list"),
    ],
)
def test_damaged_runs_are_named(tmp_path: Path, damage: object, fragment: str) -> None:
    run = tmp_path / "run"
    damage(run)  # type: ignore[operator]
    with pytest.raises(ArtifactError, match=fragment):
        artifact.load_metadata(run)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of a tensor: still valid safetensors, different weights
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-4])


def _swap_for_other_weights(path: Path) -> None:
    save_file({"w": torch.full((2,), 9.0)}, str(path))


def _pickle_in_disguise(path: Path) -> None:
    torch.save({"w": torch.ones(2)}, path)


@pytest.mark.parametrize("tamper", [_flip_a_byte, _truncate, _swap_for_other_weights, _pickle_in_disguise])
def test_tampered_weights_are_refused(tmp_path: Path, tamper: Any) -> None:
    run = tmp_path / "run"
    _write_run(run, 1.0)
    tamper(run / artifact.WEIGHTS_FILE)
    with pytest.raises(ArtifactError, match="does not match the checksum"):
        artifact.load_weights(run, artifact.load_metadata(run))


def test_valid_checksum_over_bytes_that_are_not_safetensors(tmp_path: Path) -> None:
    # Checksum and file edited together (by hand or by a newer tool): still never unpickled.
    run = tmp_path / "run"
    _write_run(run, 1.0)
    _pickle_in_disguise(run / artifact.WEIGHTS_FILE)
    meta = json.loads((run / artifact.METADATA_FILE).read_text())
    meta["weights"]["sha256"] = hashlib.sha256((run / artifact.WEIGHTS_FILE).read_bytes()).hexdigest()
    (run / artifact.METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="cannot be read as safetensors"):
        artifact.load_weights(run, artifact.load_metadata(run))


def test_loading_a_run_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["label"] = np.where(frame["a"] > 0, "yes", "no")
    labelwise.fit(frame, target="label", config=TrainConfig(epochs=1), progress=False, out=tmp_path / "run")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the load path unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    clf = labelwise.load(tmp_path / "run")
    assert len(clf.predict(frame.drop(columns="label"))) == 60


def test_out_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ArtifactError, match="is a file"), artifact.staging_dir(tmp_path / "run"):
        pass


def test_an_interrupted_run_is_named_before_any_data_is_read(tmp_path: Path) -> None:
    partial = artifact.partial_dir(tmp_path / "run")
    (partial / "checkpoints").mkdir(parents=True)
    (partial / "checkpoints" / "last.ckpt").write_bytes(b"a checkpoint")
    # The data path does not exist: reading it would fail with a DataError; the run folder is refused first.
    with pytest.raises(ArtifactError, match=r"holds the checkpoints of an interrupted training run. Pass --resume"):
        labelwise.fit(tmp_path / "never-read.csv", out=tmp_path / "run", progress=False)
    assert (partial / "checkpoints" / "last.ckpt").read_bytes() == b"a checkpoint"  # the work is kept


def test_a_file_where_the_run_goes_is_refused_before_any_data_is_read(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ArtifactError, match=r"--out '.*run' is a file; expected a directory"):
        labelwise.fit(tmp_path / "never-read.csv", out=tmp_path / "run", progress=False)
