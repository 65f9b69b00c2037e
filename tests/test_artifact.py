"""The run directory: atomic replacement, no pickles, clear errors on damaged runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from labelwise import artifact
from labelwise.errors import ArtifactError


def _write_run(path: Path, value: float) -> None:
    with artifact.staging_dir(path) as stage:
        artifact.save_artifact(stage, state_dict={"w": torch.full((2,), value)}, metadata={"note": value})


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    _write_run(tmp_path / "run", 1.5)
    assert artifact.load_metadata(tmp_path / "run")["note"] == 1.5
    torch.testing.assert_close(artifact.load_weights(tmp_path / "run")["w"], torch.full((2,), 1.5))


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
    ],
)
def test_damaged_runs_are_named(tmp_path: Path, damage: object, fragment: str) -> None:
    run = tmp_path / "run"
    damage(run)  # type: ignore[operator]
    with pytest.raises(ArtifactError, match=fragment):
        artifact.load_metadata(run)


def test_weights_that_are_not_safetensors_are_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write_run(run, 1.0)
    torch.save({"w": torch.ones(2)}, run / artifact.WEIGHTS_FILE)  # a pickle in disguise is never loaded
    with pytest.raises(ArtifactError, match="cannot be read as safetensors"):
        artifact.load_weights(run)


def test_out_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ArtifactError, match="is a file"), artifact.staging_dir(tmp_path / "run"):
        pass
