"""What a training run returns, whichever loop ran it (Lightning's `fit_network`, `fit_bagged`, `solve_linear`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["StopReason", "TrainResult"]

StopReason = Literal["early_stopping", "time_budget", "max_epochs", "interrupted"]


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What training produced.

    Attributes:
        network: the network with the best epoch's weights, on the CPU, in eval mode.
        best_epoch: 0-based epoch with the lowest validation loss (-1 if no epoch finished).
        epochs_run: epochs that finished.
        stopped_reason: ``"early_stopping"``, ``"time_budget"``, ``"max_epochs"`` or ``"interrupted"``.
        history: one dict per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``lr``.
        valid_outputs: the best weights' raw outputs on the validation rows, in order, as the run's head reads them
            (`labelwise.heads.Head.raw`): ``(N_valid, head_width)`` float32 logits, or ``(N_valid, num_features)``
            backbone features when a large softmax head's loss trained it (its logits are computed in class chunks).
        best_val_loss: validation loss of the best epoch.
        checkpoint: path of the best checkpoint, or None if none was written.
        guards: the training guards' findings (`labelwise.train.guards`): ``dict(epoch, rule, message)`` each.
        members: cross-fitting only (`labelwise.train.bagging`): per member, ``epochs_run``, ``best_epoch`` and
            ``stopped``.
    """

    network: nn.Module
    best_epoch: int
    epochs_run: int
    stopped_reason: StopReason
    history: list[dict[str, float]] = field(default_factory=list)
    valid_outputs: torch.Tensor
    best_val_loss: float
    checkpoint: Path | None = None
    guards: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
