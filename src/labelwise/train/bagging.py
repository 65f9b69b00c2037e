"""Cross-fitting: k networks, each trained on every row but one fold and early-stopped on that fold.

Every row is then predicted once by the member that never trained on it. Those out-of-fold logits stand in for a
validation split: the head fits its calibration, thresholds and conformal cutoff on all of them
(`labelwise.pipeline.finish`), so the decisions rest on five times the rows a 20 % split holds, and the model
predicts with the mean of the k members' logits (`labelwise.models.Ensemble`). This is AutoGluon's bagging
(``bagged_ensemble_model.py``), done smaller.

The loop is plain PyTorch, not Lightning: the data are in memory and a member of a 1,000-row table trains in a
fraction of a second, less than Lightning takes to import (2.3 s on 2 cores, with torchmetrics and torchvision).
It keeps what matters at that size: the same AdamW and one-cycle schedule (`labelwise.train.optim`), early stopping
with the best epoch's weights restored, a stop on a non-finite loss, the time budget, and the collapse check on
the out-of-fold decisions (`labelwise.train.collapse`). A bagged run keeps no checkpoints: it is retrained in
seconds.
"""

from __future__ import annotations

import copy
import csv
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from labelwise.errors import TrainingError, TrainingWarning
from labelwise.models.ensemble import Ensemble
from labelwise.task import Task
from labelwise.train._members import (
    CrossFit,
    Member,
    check_finite,
    device_for,
    epoch_batches,
    num_batches,
    one_thread_for_small,
    report,
)
from labelwise.train.collapse import collapse_signs, count_decisions
from labelwise.train.config import TrainConfig
from labelwise.train.optim import create_optimizer, create_scheduler, preferred
from labelwise.train.packed import fit_packed, packable
from labelwise.train.result import StopReason, TrainResult

__all__ = ["fit_bagged", "write_curve"]

_VALID_CHUNK = 4096  # rows per forward pass when scoring held-out rows (images would not fit at once)


class _Rows(Dataset[Any]):
    """The rows ``rows`` of a dataset that answers a whole index tensor at once (`InMemoryDataset`, grouped)."""

    def __init__(self, data: Any, rows: np.ndarray) -> None:
        self.data, self.rows = data, torch.from_numpy(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, indices: torch.Tensor) -> Any:
        return self.data[self.rows[indices]]

    @property
    def targets(self) -> torch.Tensor:
        """The targets of these rows, without reading their inputs."""
        return self.data.targets[self.rows]  # type: ignore[no-any-return]


def fit_bagged(
    build: Callable[[], nn.Module],
    task: Task,
    *,
    train: Dataset[Any],
    valid: Dataset[Any],
    folds: np.ndarray,
    loss: nn.Module,
    config: TrainConfig,
    progress: bool = False,
) -> TrainResult:
    """Train one network per fold; return their `Ensemble` with the out-of-fold logits of every row.

    Args:
        build: makes a fresh network (called once per fold, after seeding with ``config.seed + fold``).
        task: the Task the targets encode.
        train: every row, as training reads it (augmentation on); indexed by index tensors.
        valid: the same rows as evaluation reads them (no augmentation).
        folds: ``(N,)`` the fold of each row, ``0..k-1`` (`labelwise.data.splits.assign_folds`).
        loss: ``loss(logits, targets)``.
        config: epochs, batch size, lr, weight decay, patience, seed, time budget, guards, accelerator.
        progress: one line per member on stderr.

    Returns:
        a `TrainResult` whose ``valid_outputs`` are the out-of-fold logits ``(N, head_width)`` in row order and
        whose ``history`` is the members' mean curve.

    Raises:
        TrainingError: a member's loss became non-finite; ``guards="fail"`` and the decisions collapsed.
    """
    num_folds = int(folds.max()) + 1
    device = device_for(config)
    deadline = None if config.time_budget is None else time.monotonic() + config.time_budget
    networks = []
    for fold in range(num_folds):
        torch.manual_seed(config.seed + fold)
        networks.append(build().to(device))
    started = time.perf_counter()
    job = CrossFit(train, valid, folds, config, device, deadline)
    if packable(networks[0], valid[torch.arange(2)][0]):
        members = fit_packed(networks, loss.to(device), job)
        seconds: list[float | None] = [None] * num_folds
    else:
        members, seconds = _fit_one_by_one(networks, loss.to(device), job)
    if progress:
        for fold, member in enumerate(members):
            report(member, fold=fold, num_folds=num_folds, seconds=seconds[fold])
        if seconds[0] is None:
            print(f"members trained side by side in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return _result(networks, members, folds=folds, task=task, loss=loss, config=config, targets=_targets(valid))


def _fit_one_by_one(
    networks: list[nn.Module], loss: nn.Module, job: CrossFit
) -> tuple[list[Member], list[float | None]]:
    """Train the members one after another (networks `labelwise.train.packed` cannot pack), each keeping its best
    weights; return them with the seconds each took."""
    members: list[Member] = []
    seconds: list[float | None] = []
    for fold, network in enumerate(networks):
        started = time.perf_counter()
        torch.manual_seed(job.config.seed + fold)
        fit = _Fit(network, loss, config=job.config, device=job.device, seed=job.config.seed + fold)
        with one_thread_for_small(network, job.device):
            rows, held = np.flatnonzero(job.folds != fold), np.flatnonzero(job.folds == fold)
            members.append(fit.run(_Rows(job.train, rows), _Rows(job.valid, held), deadline=job.deadline))
        network.load_state_dict(members[-1].state)
        seconds.append(time.perf_counter() - started)
    return members, seconds


class _Fit:
    """One member's training: AdamW with the one-cycle schedule, early stopping on its held-out fold."""

    def __init__(self, network: nn.Module, loss: nn.Module, *, config: TrainConfig, device: torch.device, seed: int):
        self.network, self.loss, self.config, self.device = network, loss, config, device
        self.generator = torch.Generator().manual_seed(seed)

    def run(self, train: _Rows, valid: _Rows, *, deadline: float | None) -> Member:
        config, network = self.config, self.network
        batch_size = config.resolve_batch_size(len(train))
        steps = num_batches(len(train), batch_size)
        epochs = config.resolve_epochs(steps)
        lr = config.resolve_lr(preferred(network, "preferred_lr"))
        weight_decay = config.resolve_weight_decay(preferred(network, "preferred_weight_decay"))
        optimizer = create_optimizer(network, lr=lr, weight_decay=weight_decay)
        scheduler = create_scheduler(optimizer, lr=lr, total_steps=epochs * steps)
        targets = valid.targets.to(self.device)
        history: list[dict[str, float]] = []
        best: tuple[float, int, dict[str, torch.Tensor], torch.Tensor] | None = None
        stopped: StopReason = "max_epochs"
        for epoch in range(epochs):
            train_loss = self._epoch(train, optimizer, scheduler, batch_size=batch_size)
            logits = _logits(network, valid, self.device)
            val_loss = float(self.loss(logits, targets))
            check_finite(epoch, train_loss=train_loss, val_loss=val_loss, lr=lr)
            last_lr = float(scheduler.get_last_lr()[0])
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": last_lr})
            if best is None or val_loss < best[0]:
                best = (val_loss, epoch, copy.deepcopy(network.state_dict()), logits.cpu())
            elif epoch - best[1] >= config.patience:
                stopped = "early_stopping"
                break
            if deadline is not None and time.monotonic() > deadline:
                stopped = "time_budget"
                break
        assert best is not None  # at least one epoch runs: resolve_epochs returns >= 1
        return Member(best[2], best[3], history, best[1], stopped)

    def _epoch(self, train: _Rows, optimizer: Any, scheduler: Any, *, batch_size: int) -> float:
        network, loss_fn = self.network.train(), self.loss
        total, rows = torch.zeros((), device=self.device), 0
        for indices in epoch_batches(len(train), batch_size, generator=self.generator):
            inputs, targets = train[indices]
            inputs, targets = _to(inputs, self.device), targets.to(self.device)
            loss = loss_fn(network(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.detach() * len(targets)
            rows += len(targets)
        return float(total) / max(rows, 1)


def _result(
    networks: list[nn.Module],
    members: list[Member],
    *,
    folds: np.ndarray,
    task: Task,
    loss: nn.Module,
    config: TrainConfig,
    targets: torch.Tensor,
) -> TrainResult:
    held_out = torch.empty(len(folds), members[0].held_out.shape[1])
    for fold, member in enumerate(members):
        held_out[torch.from_numpy(np.flatnonzero(folds == fold))] = member.held_out
    stops = {member.stopped for member in members}
    return TrainResult(
        network=Ensemble(networks).cpu().eval(),
        best_epoch=round(float(np.mean([member.best_epoch for member in members]))),
        epochs_run=max(len(member.history) for member in members),
        stopped_reason=next(iter(stops)) if len(stops) == 1 else "max_epochs",
        history=_mean_curve([member.history for member in members]),
        valid_outputs=held_out,
        best_val_loss=float(loss.cpu()(held_out, targets)),
        guards=_collapse_findings(held_out, targets, task=task, action=config.guards),
        members=[
            {"epochs_run": len(member.history), "best_epoch": member.best_epoch, "stopped": member.stopped}
            for member in members
        ],
    )


def _mean_curve(curves: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per epoch, the mean of the members that ran it: the curve a reader of one network's history expects."""
    longest = max(len(curve) for curve in curves)
    mean = []
    for epoch in range(longest):
        rows = [curve[epoch] for curve in curves if len(curve) > epoch]
        mean.append({key: float(np.mean([row[key] for row in rows])) for key in rows[0]} | {"epoch": epoch})
    return mean


def write_curve(run_dir: Path, history: list[dict[str, float]]) -> None:
    """The members' mean curve as ``run_dir/logs/metrics.csv``, one row per epoch, where Lightning's CSV logger
    writes a single network's (the HTML report draws it from there)."""
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["epoch", "train_loss", "val_loss", "lr"])
        writer.writeheader()
        writer.writerows({**row, "epoch": int(row["epoch"])} for row in history)


def _collapse_findings(logits: torch.Tensor, targets: torch.Tensor, *, task: Task, action: str) -> list[dict[str, Any]]:
    """The collapse check (`labelwise.train.collapse`) on the out-of-fold decisions of the ensemble's members."""
    if action == "off":
        return []
    predicted, items, hits = count_decisions(logits, targets, task)
    signs = collapse_signs(predicted, items, hits, num_items=len(targets), kind=task.kind)
    if not signs:
        return []
    seen = "; ".join(sign.describe(task.classes, num_items=len(targets)) for sign in signs[:3])
    message = (
        f"the out-of-fold decisions collapsed: {seen} (over all {len(targets)} rows, each predicted by the member "
        "that did not train on it). Check the labels and the features, or train longer (--epochs). Pass "
        "`--guards off` (guards='off') to silence this check."
    )
    if action == "fail":
        raise TrainingError(message)
    warnings.warn(message, TrainingWarning, stacklevel=3)
    return [{"epoch": -1, "rule": "collapse", "message": message}]


def _logits(network: nn.Module, data: _Rows, device: torch.device) -> torch.Tensor:
    network.eval()
    with torch.inference_mode():
        parts = [network(_to(data[rows][0], device)) for rows in torch.split(torch.arange(len(data)), _VALID_CHUNK)]
    return torch.cat(parts).float()


def _targets(data: Dataset[Any]) -> torch.Tensor:
    return data.targets  # type: ignore[attr-defined, no-any-return]


def _to(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    return {key: value.to(device) for key, value in inputs.items()}
