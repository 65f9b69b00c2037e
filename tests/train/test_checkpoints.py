"""Checkpoints: atomic writes, and a run resumed from last.ckpt ends where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from _factories import make_task
from labelwise.losses import loss_for
from labelwise.models import build_network, create_backbone
from labelwise.task import Task
from labelwise.train import TrainConfig, TrainResult, fit_network
from labelwise.train.checkpoint_io import AtomicCheckpointIO
from labelwise.train.checkpoints import last_checkpoint


def _network(task: Task) -> nn.Module:
    # With dropout: the checkpoint must carry torch's random state for a resumed run to draw the same masks.
    L.seed_everything(0, verbose=False)
    return build_network(create_backbone("mlp", in_features=6, hidden=[16], dropout=0.3), task)


def _data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    return x, (x[:, 0] + x[:, 1] > 0).float()


def _train(run_dir: Path, loss: object, *, resume: bool = False) -> TrainResult:
    task = make_task("binary")
    return fit_network(
        _network(task),
        task,
        train=_data(0, 96),
        valid=_data(1, 40),
        loss=loss,  # type: ignore[arg-type]
        config=TrainConfig(epochs=5, batch_size=32, lr=0.01, patience=10),
        run_dir=run_dir,
        progress_bar=False,
        resume=resume,
    )


class _Killed(Exception):
    """Stands in for a process killed mid-epoch: the exception ends training where it is."""


def test_resumed_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    task = make_task("binary")
    loss = loss_for(task)
    whole = _train(tmp_path / "whole", loss)
    calls = [0]

    def dies_in_epoch_3(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] == 3 * 4 + 2:  # 3 epochs of 3 training steps + 1 validation pass, then 2 steps into epoch 3
            raise _Killed
        return loss(logits, targets)

    with pytest.raises(_Killed):
        _train(tmp_path / "cut", dies_in_epoch_3)
    assert torch.load(last_checkpoint(tmp_path / "cut"), weights_only=True)["epoch"] == 2  # type: ignore[arg-type]
    resumed = _train(tmp_path / "cut", loss, resume=True)
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2, 3, 4]
    for row, expected in zip(resumed.history, whole.history, strict=True):
        assert row == pytest.approx(expected)
    for name, value in whole.network.state_dict().items():
        torch.testing.assert_close(resumed.network.state_dict()[name], value, rtol=1e-6, atol=1e-7)


def test_resume_without_a_checkpoint_starts_afresh(tmp_path: Path) -> None:
    result = _train(tmp_path, loss_for(make_task("binary")), resume=True)
    assert result.epochs_run == 5


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)

    def dies_mid_write(obj: object, handle: object) -> None:
        handle.write(b"half a checkpoint")  # type: ignore[attr-defined]
        raise _Killed

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(_Killed):
        io.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
