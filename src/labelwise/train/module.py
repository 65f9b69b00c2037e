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
from labelwise.models.head import backbone_and_head
from labelwise.train.batches import split_rows
from labelwise.train.distributed import average_buffers, rank_slice_size, reduce_sum
from labelwise.train.head_loss import HeadLoss
from labelwise.train.optim import create_optimizer, create_scheduler

__all__ = ["LabelwiseModule", "create_optimizer", "create_scheduler"]


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
        sliced_batches: with several processes, each training batch holds this process's slice of every batch of
            ``batch_size`` rows (`labelwise.train.distributed`), so a step takes that slice.

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
        sliced_batches: bool = False,
    ) -> None:
        super().__init__()
        self.network = network
        self.loss = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.total_steps = total_steps
        self.sliced_batches = sliced_batches
        self.history: list[dict[str, float]] = []
        self.automatic_optimization = False
        self._plain_backward = False
        self._negatives_restored = False
        self._sums: dict[str, list[Any]] = {"train": [0.0, 0], "valid": [0.0, 0]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, head_width)`` for a batch."""
        return self.network(x)  # type: ignore[no-any-return]

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        inputs, targets = batch
        logits = None
        if isinstance(self.loss, HeadLoss):
            # A large head's loss reads the features and the head's weights, never the (N, C) logits.
            backbone, head = backbone_and_head(self.network)
            loss: torch.Tensor = self.loss(backbone(inputs), head, targets, train=stage == "train")
        else:
            logits = self.network(inputs)
            loss = self.loss(logits, targets)
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
        size = self._step_rows(len(targets))
        for step_inputs, step_targets in zip(split_rows(inputs, size), torch.split(targets, size), strict=True):
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
        if isinstance(self.loss, HeadLoss) and not self._negatives_restored:
            self.loss.for_rank(self.global_rank)  # each rank draws its own sampled negatives

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        """Accumulate the validation loss; return the batch's detached logits (the training guards read them),
        None for a large head's loss, which computes none."""
        logits = self._step(batch, "valid")[1]
        return None if logits is None else logits.detach()

    def on_train_epoch_start(self) -> None:
        """Reset the epoch's training loss."""
        self._sums["train"] = [0.0, 0]

    def on_validation_epoch_start(self) -> None:
        """Reset the epoch's validation loss; with several processes, average their BatchNorm statistics."""
        self._sums["valid"] = [0.0, 0]
        if self._trainer is not None and self.trainer.world_size > 1:
            # Each process updated its running statistics on its own slices: validate and checkpoint the same ones.
            average_buffers(self.network)

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
        if isinstance(self.loss, HeadLoss):
            checkpoint["labelwise_negatives"] = self.loss.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the epoch history and the random state of a resumed run."""
        self.history = list(checkpoint.get("labelwise_history", []))
        rng = checkpoint.get("labelwise_rng")
        if rng is not None:
            torch.set_rng_state(rng["cpu"])
            if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(rng["cuda"])
        negatives = checkpoint.get("labelwise_negatives")
        if negatives is not None and isinstance(self.loss, HeadLoss):
            self.loss.generator.set_state(negatives)
            self._negatives_restored = True

    def _step_rows(self, num_rows: int) -> int:
        """Rows of one optimizer step on this process: its slice of ``batch_size`` when batches are shared."""
        if not self.batch_size:
            return num_rows
        if not self.sliced_batches:
            return self.batch_size
        return rank_slice_size(self.batch_size, num_replicas=self.trainer.world_size, rank=self.global_rank)

    def _mean(self, stage: str) -> torch.Tensor:
        total, count = self._sums[stage]
        if self._trainer is not None and self.trainer.world_size > 1:
            # Each process holds a slice of the rows: the mean over all of them, the same on every process, so
            # early stopping and the checkpoint monitor decide alike everywhere.
            sums = reduce_sum(torch.tensor([float(total), float(count)], dtype=torch.float64, device=self.device))
            total, count = sums.tolist()
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
