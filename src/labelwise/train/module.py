"""The LightningModule: one network, one Task loss, AdamW with a one-cycle schedule.

Kept cheap per step, because on small tables a step takes about a millisecond: losses are summed on the
device and logged once per epoch (no device-to-host copy, no per-step logging machinery), and the step is
written out in `training_step` (manual optimization), which skips the closure machinery of Lightning's
automatic optimization, about half of its per-step cost. A training batch may hold several optimizer steps
(tables fetch ~8192 rows at once, see `labelwise.train.batches`), so Lightning's remaining per-batch hooks
are shared by them. The optimizer step still goes through Lightning's LightningOptimizer, and so does
backward except in plain float32 on one device (see `LabelwiseModule.on_fit_start`), so precision plugins and
strategies apply.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn

from labelwise.errors import TrainingError

__all__ = ["LabelwiseModule", "create_optimizer", "create_scheduler"]

# One-cycle shape: a quarter of the steps warm up from lr/25, the rest anneal (cosine) to lr/25e4.
PCT_START = 0.25


def create_optimizer(network: nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW that decays weight matrices and kernels but not biases and norm parameters (1-d tensors).

    Decaying a norm's gain or a bias only pulls it toward 0 without regularizing anything (the
    convention of timm and nanoGPT).

    Example:
        >>> create_optimizer(nn.Linear(3, 2), lr=1e-3, weight_decay=0.05).param_groups[1]["weight_decay"]
        0.0
    """
    params = [p for p in network.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def create_scheduler(
    optimizer: torch.optim.Optimizer, *, lr: float, total_steps: int
) -> torch.optim.lr_scheduler.OneCycleLR:
    """The one-cycle schedule over ``total_steps`` optimizer steps, stepped after every step.

    A run of fewer than 8 steps gets the schedule of 8 and ends early in it: with fewer, a phase of
    OneCycleLR is empty and torch divides by its length.
    """
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=max(total_steps, 8), pct_start=PCT_START
    )


class LabelwiseModule(L.LightningModule):
    """Train ``network`` with ``loss`` on ``(inputs, targets)`` batches.

    Args:
        network: maps inputs to logits ``(N, task.head_width)``.
        loss: ``loss(logits, targets)`` -> mean loss, e.g. ``labelwise.losses.loss_for(task)``.
        lr: peak learning rate.
        weight_decay: AdamW weight decay (weights only, see `create_optimizer`).
        batch_size: rows per optimizer step; a training batch with more rows (several batches fetched at once,
            see `labelwise.train.batches.EpochBatches`) is split into steps of this size. None: one step per batch.
        total_steps: optimizer steps the schedule spans; None: ``trainer.estimated_stepping_batches``.

    Attributes:
        history: one dict per validated epoch: ``epoch``, ``train_loss``, ``val_loss``, ``lr`` (at the epoch's end).
    """

    def __init__(
        self,
        network: nn.Module,
        loss: nn.Module,
        *,
        lr: float,
        weight_decay: float,
        batch_size: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.loss = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.total_steps = total_steps
        self.history: list[dict[str, float]] = []
        self.automatic_optimization = False
        self._plain_backward = False
        self._sums: dict[str, list[Any]] = {"train": [0.0, 0], "valid": [0.0, 0]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, head_width)`` for a batch."""
        return self.network(x)  # type: ignore[no-any-return]

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = batch
        logits = self.network(inputs)
        loss: torch.Tensor = self.loss(logits, targets)
        # Weighted by rows so the epoch loss is the mean over rows, also when the last batch is short.
        total = self._sums[stage]
        total[0] = total[0] + loss.detach() * len(targets)
        total[1] += len(targets)
        return loss, logits

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """One optimizer step per ``batch_size`` rows of the batch."""
        optimizer = self.optimizers()
        scheduler = self.lr_schedulers()
        inputs, targets = batch
        size = self.batch_size or len(targets)
        for step_inputs, step_targets in zip(torch.split(inputs, size), torch.split(targets, size), strict=True):
            loss, _ = self._step((step_inputs, step_targets), "train")
            optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
            if self._plain_backward:
                torch.autograd.backward(loss)
            else:
                self.manual_backward(loss)
            self._check_finite(loss, batch_idx)
            optimizer.step()  # type: ignore[union-attr]
            scheduler.step()  # type: ignore[union-attr]

    def _check_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Stop before a non-finite loss or gradient reaches the weights (one host sync per step).

        Under a loss scaler (float16 mixed precision) non-finite gradients are expected now and then: the
        scaler skips those steps and lowers its scale, so only the loss is checked there.
        """
        grads = [p.grad for p in self.network.parameters() if p.grad is not None]
        check_grads = grads and getattr(self.trainer.precision_plugin, "scaler", None) is None
        norms = torch.stack(torch._foreach_norm(grads)) if check_grads else loss.detach().reshape(1)
        if bool(torch.isfinite(loss.detach()).all() and torch.isfinite(norms).all()):
            return
        what = "the loss" if not torch.isfinite(loss.detach()).all() else "the gradients"
        raise TrainingError(
            f"{what} became non-finite (NaN or inf) in epoch {self.current_epoch}, batch {batch_idx} (optimizer "
            f"step {self.trainer.global_step}), before the weights were updated: training diverged. Try a lower "
            f"learning rate (lr={self.lr:g} now; e.g. --lr {self.lr / 10:g}), and check that the inputs hold no "
            "NaN/inf and that table features are standardized (huge raw values overflow)."
        )

    def on_fit_start(self) -> None:
        """Choose how to call backward.

        ``manual_backward`` dispatches ``on_before_backward``/``on_after_backward`` to every callback around each
        backward, ~0.2 ms a step, a tenth of a small table's step. With plain float32 on one device it ends in
        ``loss.backward()``, so that is called directly (those two hooks are then not called; none of ours uses
        them). Mixed precision (loss scaling) and distributed strategies keep Lightning's path.
        """
        plain = type(self.trainer.precision_plugin) is Precision
        self._plain_backward = plain and type(self.trainer.strategy) is SingleDeviceStrategy

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Accumulate the validation loss; return the batch's detached logits (the training guards read them)."""
        return self._step(batch, "valid")[1].detach()

    def on_train_epoch_start(self) -> None:
        """Reset the epoch's training loss."""
        self._sums["train"] = [0.0, 0]

    def on_validation_epoch_start(self) -> None:
        """Reset the epoch's validation loss."""
        self._sums["valid"] = [0.0, 0]

    def on_validation_epoch_end(self) -> None:
        """Log ``train_loss`` and ``val_loss``, record the epoch in `history`, stop on a non-finite loss.

        Validation runs after the epoch's last training batch, so both losses of the epoch are known here,
        and the check runs before the checkpoint callback could save diverged weights.
        """
        if self.trainer.sanity_checking:
            return
        train_loss, val_loss = float(self._mean("train")), float(self._mean("valid"))
        self.log_dict({"train_loss": train_loss, "val_loss": val_loss}, prog_bar=True)
        self.history.append(
            {"epoch": self.current_epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": self._current_lr()}
        )
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise TrainingError(
                f"the loss became non-finite in epoch {self.current_epoch} (train_loss={train_loss}, "
                f"val_loss={val_loss}): training diverged. Try a lower learning rate (lr={self.lr:g} now; e.g. "
                f"lr={self.lr / 10:g}), and check that the inputs hold no NaN/inf and that table features are "
                "standardized (huge raw values overflow)."
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the epoch history and torch's random state in the checkpoint.

        With the random state (dropout masks, augmentation) and the epoch-seeded batch order, a resumed run
        takes the same steps as an uninterrupted one.
        """
        checkpoint["labelwise_history"] = self.history
        checkpoint["labelwise_rng"] = {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],  # type: ignore[no-untyped-call]
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the epoch history and the random state of a resumed run."""
        self.history = list(checkpoint.get("labelwise_history", []))
        rng = checkpoint.get("labelwise_rng")
        if rng is not None:
            torch.set_rng_state(rng["cpu"])
            if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(rng["cuda"])

    def _mean(self, stage: str) -> torch.Tensor:
        total, count = self._sums[stage]
        return torch.as_tensor(total / max(count, 1), dtype=torch.float32)

    def _current_lr(self) -> float:
        optimizers = self.trainer.optimizers if self._trainer is not None else []
        return float(optimizers[0].param_groups[0]["lr"]) if optimizers else math.nan

    def configure_optimizers(self) -> Any:
        """AdamW and a one-cycle schedule over all the steps the trainer may run."""
        optimizer = create_optimizer(self.network, lr=self.lr, weight_decay=self.weight_decay)
        total = self.total_steps if self.total_steps is not None else int(self.trainer.estimated_stepping_batches)
        scheduler = create_scheduler(optimizer, lr=self.lr, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
