"""Lightning parity: fit_network takes the same steps as a bare PyTorch loop written here from scratch."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _factories import make_task
from labelwise.losses import loss_for
from labelwise.models import build_network
from labelwise.task import Task, TaskKind
from labelwise.train import TrainConfig, fit_network

# Runs of a few steps end collapsed or unlearned, as the guards rightly say; they are tested in test_guards.py.
pytestmark = pytest.mark.filterwarnings("ignore::labelwise.errors.TrainingWarning")


def _reference_loss(task: Task, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if task.kind is TaskKind.MULTICLASS:
        return F.cross_entropy(logits, targets)
    return F.binary_cross_entropy_with_logits(logits[:, 0] if task.kind is TaskKind.BINARY else logits, targets)


def _bare_loop(
    network: nn.Module,
    task: Task,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
) -> tuple[list[float], list[dict[str, torch.Tensor]]]:
    """AdamW (no decay on 1-d parameters) + OneCycleLR(pct_start=0.25), a seeded permutation per epoch."""
    decay = [p for p in network.parameters() if p.ndim >= 2]
    no_decay = [p for p in network.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    steps = -(-len(x) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps, pct_start=0.25)
    generator = torch.Generator().manual_seed(seed)
    epoch_losses, snapshots = [], []
    for _ in range(epochs):
        network.train()
        total = 0.0
        for index in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = _reference_loss(task, network(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(index)
        epoch_losses.append(total / len(x))
        snapshots.append(copy.deepcopy(network.state_dict()))
    return epoch_losses, snapshots


def test_two_epochs_match_a_bare_loop(kind: TaskKind, tmp_path: Path) -> None:
    task = make_task(kind)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen)
    targets = {
        TaskKind.BINARY: (x[:, 0] > 0).float(),
        TaskKind.MULTICLASS: (x[:, :3] > 0).long().sum(dim=1),  # 0..3
        TaskKind.MULTILABEL: (x[:, :4] > 0).float(),
    }
    y = targets[kind]
    backbone = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())  # no dropout: no RNG in forward
    backbone.num_features = 8
    L.seed_everything(0, verbose=False)
    initial = build_network(backbone, task)
    kwargs = {"lr": 0.01, "weight_decay": 0.05, "batch_size": 25, "seed": 3}

    reference_losses, snapshots = _bare_loop(copy.deepcopy(initial), task, x, y, epochs=2, **kwargs)
    result = fit_network(
        copy.deepcopy(initial),
        task,
        train=(x, y),
        valid=(x, y),
        loss=loss_for(task),
        config=TrainConfig(epochs=2, **kwargs),
        run_dir=tmp_path,
        progress_bar=False,
    )

    # Same ops in the same order on the CPU; the tolerance only allows float32 rounding of the epoch means.
    train_losses = [row["train_loss"] for row in result.history]
    torch.testing.assert_close(torch.tensor(train_losses), torch.tensor(reference_losses), rtol=1e-5, atol=1e-6)
    best = snapshots[result.best_epoch]
    for name, value in result.network.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=1e-5, atol=1e-6, msg=name)
