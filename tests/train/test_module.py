"""The optimizer and schedule the LightningModule trains with."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from labelwise.losses import loss_for
from labelwise.task import Task
from labelwise.train import InMemoryDataset, LabelwiseModule
from labelwise.train.batches import make_loader
from labelwise.train.optim import PCT_START, create_optimizer, create_scheduler


def test_weight_decay_applies_to_weights_only() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Conv1d(1, 2, 3))
    net[0].bias.requires_grad_(False)  # frozen parameters are left out
    optimizer = create_optimizer(net, lr=1e-3, weight_decay=0.05)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for p in plain["params"]} == {id(net[1].weight), id(net[1].bias), id(net[2].bias)}


def test_one_cycle_rises_to_lr_then_anneals() -> None:
    optimizer = create_optimizer(nn.Linear(2, 1), lr=0.01, weight_decay=0.0)
    scheduler = create_scheduler(optimizer, lr=0.01, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = max(range(100), key=lrs.__getitem__)
    assert lrs[0] == pytest.approx(0.01 / 25)  # OneCycleLR's default div_factor
    assert lrs[peak] == pytest.approx(0.01, rel=1e-3) and abs(peak - PCT_START * 100) <= 1
    assert lrs[-1] < 0.01 / 1000


@pytest.mark.parametrize("total_steps", [1, 2, 4, 7])
def test_very_short_runs_have_a_schedule(total_steps: int) -> None:
    optimizer = create_optimizer(nn.Linear(2, 1), lr=0.01, weight_decay=0.0)
    scheduler = create_scheduler(optimizer, lr=0.01, total_steps=total_steps)
    for _ in range(total_steps):
        optimizer.step()
        scheduler.step()  # OneCycleLR itself divides by zero on 4 steps
    assert 0 < optimizer.param_groups[0]["lr"] <= 0.01


def test_mixed_precision_takes_lightnings_backward(tmp_path: Path) -> None:
    # fit_network trains in float32 with a direct loss.backward(); other precisions must go through Lightning.
    task = Task(kind="binary", classes=("no", "yes"))
    x = torch.randn(64, 3)
    y = (x[:, 0] > 0).float()
    network = nn.Sequential(nn.Linear(3, 1))
    module = LabelwiseModule(network, loss_for(task), lr=0.01, weight_decay=0.0)
    loader = make_loader(InMemoryDataset(x, y), batch_size=16, shuffle=True, seed=0)
    trainer = L.Trainer(
        accelerator="cpu",
        precision="bf16-mixed",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
        trainer.fit(module, loader, loader)
    assert not module._plain_backward and trainer.global_step == 8
    assert module.history[1]["train_loss"] < module.history[0]["train_loss"]
