"""`fit_network`: train a network with Lightning and return it with its best weights restored.

Callbacks: early stopping on ``val_loss``, a checkpoint on every improvement (``run_dir/checkpoints/best.ckpt``)
and of the whole training state after every epoch (``last.ckpt``, what ``resume=True`` continues from; see
`labelwise.train.checkpoints`), a Timer for ``time_budget``, and a progress bar; metrics per epoch go to
``run_dir/logs/metrics.csv`` (and to TensorBoard / MLflow with ``config.loggers``). Ctrl+C stops after the current
step and returns the best epoch so far (a second Ctrl+C interrupts for real).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, Timer, TQDMProgressBar
from torch import nn
from torch.utils.data import Dataset

from labelwise.models.head import backbone_and_head
from labelwise.task import Task
from labelwise.train._loaders import Loaders, as_dataset, batch_order, targets_at_hand, targets_of
from labelwise.train._running import naming_kept_checkpoints, quiet_lightning, stop_on_sigint
from labelwise.train.batches import EpochBatches, TensorPair, predict_logits
from labelwise.train.checkpoint_io import AtomicCheckpointIO
from labelwise.train.checkpoints import BEST, LAST, checkpoint_dir, last_checkpoint
from labelwise.train.config import TrainConfig
from labelwise.train.distributed import trainer_options
from labelwise.train.guards import CollapseGuard, LearningGuard, create_guards
from labelwise.train.head_loss import HeadLoss
from labelwise.train.loggers import create_loggers, logging_environment
from labelwise.train.module import LabelwiseModule
from labelwise.train.optim import preferred
from labelwise.train.progress import progress_callback
from labelwise.train.result import StopReason, TrainResult

__all__ = ["StopReason", "TrainResult", "fit_network"]


def fit_network(
    network: nn.Module,
    task: Task,
    *,
    train: TensorPair | Dataset[Any],
    valid: TensorPair | Dataset[Any],
    loss: nn.Module,
    config: TrainConfig,
    run_dir: Path | str,
    progress_bar: bool = True,
    resume: bool = False,
) -> TrainResult:
    """Train ``network`` on ``train``, early-stopped on ``valid``; return it with its best weights.

    Seeds everything with ``config.seed`` first; seed (``lightning.seed_everything``) before building the
    network too, so that its initial weights are reproducible.

    Args:
        network: maps inputs to logits ``(N, task.head_width)``.
        task: the Task the targets encode.
        train: ``(inputs, targets)`` tensors (inputs as `InMemoryDataset` takes them; targets from ``task.encode``),
            an `InMemoryDataset` (e.g. uint8 images with a batch augmentation), or any Dataset of ``(x, y)`` items.
        valid: the same for validation rows (use the eval transform: no augmentation).
        loss: ``loss(logits, targets)``, e.g. ``labelwise.losses.loss_for(task)``.
        config: training options.
        run_dir: checkpoints go to ``run_dir/checkpoints``, the per-epoch CSV log to ``run_dir/logs``.
        progress_bar: show Lightning's progress bar.
        resume: continue from ``run_dir/checkpoints/last.ckpt`` when a killed run left one (same network, data
            and config: the caller checks that); otherwise start afresh.

    Raises:
        DataError: inputs and targets of different lengths, empty data, or non-finite table features.
        TrainingError: the loss or the gradients became non-finite (the checkpoints of the last good epoch stay
            in ``run_dir/checkpoints``).

    Example:
        >>> import tempfile
        >>> from labelwise.losses import loss_for
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).float()
        >>> result = fit_network(nn.Linear(4, 1), task, train=(x, y), valid=(x, y), loss=loss_for(task),
        ...                      config=TrainConfig(epochs=2), run_dir=tempfile.mkdtemp(), progress_bar=False)
        >>> result.epochs_run, result.valid_outputs.shape
        (2, torch.Size([64, 1]))
    """
    run_dir = Path(run_dir)
    L.seed_everything(config.seed, workers=True, verbose=False)
    parts = _assemble(network, task, train=train, valid=valid, loss=loss, config=config)
    callbacks = _Callbacks.create(
        config, run_dir=run_dir, progress_bar=progress_bar, steps=len(parts.loaders.train), more=parts.callbacks
    )
    trainer, interrupted = _train(
        parts, callbacks, config=config, run_dir=run_dir, progress_bar=progress_bar, resume=resume
    )
    return _collect(parts, trainer, callbacks=callbacks, loss=loss, interrupted=interrupted)


@dataclass(frozen=True)
class _Parts:
    """What one fit trains: the module, its loaders and validation rows, the guards and the epochs to run."""

    module: LabelwiseModule
    loaders: Loaders
    valid: Dataset[Any]
    guards: list[CollapseGuard | LearningGuard]
    max_epochs: int

    @property
    def callbacks(self) -> list[Callback]:
        """The guards, and the callback that checkpoints the training loader's shuffling."""
        return [*self.guards, *batch_order(self.loaders.train)]


def _assemble(
    network: nn.Module,
    task: Task,
    *,
    train: TensorPair | Dataset[Any],
    valid: TensorPair | Dataset[Any],
    loss: nn.Module,
    config: TrainConfig,
) -> _Parts:
    """Stage 1 of `fit_network`: check the data, make its loaders, wrap the network, create the guards."""
    train_data, valid_data = as_dataset(train, "train"), as_dataset(valid, "valid")
    loaders = Loaders.create(train_data, valid_data, config=config)
    max_epochs = config.resolve_epochs(loaders.steps_per_epoch)
    module = LabelwiseModule(
        network,
        loss,
        lr=config.resolve_lr(preferred(network, "preferred_lr")),
        weight_decay=config.resolve_weight_decay(preferred(network, "preferred_weight_decay")),
        batch_size=loaders.batch_size,
        sliced_batches=isinstance(loaders.train.sampler, EpochBatches),
        total_steps=max_epochs * loaders.steps_per_epoch,
    )
    guards = create_guards(
        task,
        # The guards read each validation batch's (N, C) logits, which a large head's loss never computes.
        action="off" if isinstance(loss, HeadLoss) else config.guards,
        loss=loss,
        train_targets=targets_at_hand(train_data),
        valid_targets=targets_at_hand(valid_data),
    )
    return _Parts(module, loaders, valid_data, guards, max_epochs)


def _train(
    parts: _Parts, callbacks: _Callbacks, *, config: TrainConfig, run_dir: Path, progress_bar: bool, resume: bool
) -> tuple[L.Trainer, bool]:
    """Stage 2 of `fit_network`: Lightning's fit; the trainer, and whether Ctrl+C stopped it."""
    loaders = parts.loaders
    with quiet_lightning(), logging_environment(config.loggers):
        trainer = _build_trainer(
            config,
            callbacks=callbacks,
            run_dir=run_dir,
            max_epochs=parts.max_epochs,
            progress_bar=progress_bar,
            own_sampler=any(isinstance(loader.sampler, EpochBatches) for loader in (loaders.train, loaders.valid)),
        )
        resume_from = last_checkpoint(run_dir) if resume else None
        with stop_on_sigint(trainer) as interrupted, naming_kept_checkpoints(run_dir):
            trainer.fit(parts.module, loaders.train, loaders.valid, ckpt_path=resume_from, weights_only=True)
    return trainer, bool(interrupted)


def _collect(
    parts: _Parts, trainer: L.Trainer, *, callbacks: _Callbacks, loss: nn.Module, interrupted: bool
) -> TrainResult:
    """Stage 3 of `fit_network`: the best weights back in the network, their validation outputs, the result."""
    # Ranks > 0 keep the last weights: rank 0 alone returns the run (and may be renaming its folder by then).
    checkpoint = _restore_best(parts.module, callbacks.checkpoint) if trainer.is_global_zero else None
    valid_outputs, best_val_loss = _validation_outputs(
        parts.module,
        parts.valid,
        loss,
        batch_size=parts.loaders.valid_batch_size,
        device=trainer.strategy.root_device,
    )
    return _result(
        parts.module,
        valid_outputs=valid_outputs,
        best_val_loss=best_val_loss,
        checkpoint=checkpoint,
        stopped_reason=_stopped_reason(callbacks, interrupted=interrupted),
        guards=[finding for guard in parts.guards for finding in guard.findings],
    )


def _validation_outputs(
    module: LabelwiseModule, valid: Dataset[Any], loss: nn.Module, *, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, Callable[[], float]]:
    """The best weights' logits on the validation rows, or their features for a large head's loss; and a function
    scoring the validation loss from them. Lightning hands the model back on the CPU; the pass runs where training
    ran."""
    network, targets = module.network, targets_of(valid)
    if not (isinstance(loss, HeadLoss) and loss.ranks_in_chunks):
        logits = predict_logits(network, valid, batch_size=batch_size, device=device)
        score = loss.from_logits if isinstance(loss, HeadLoss) else loss
        return logits, lambda: float(score(logits, targets))
    backbone, head = backbone_and_head(network)
    features = predict_logits(backbone, valid, batch_size=batch_size, device=device)
    return features, lambda: float(loss(features, head, targets, train=False))


def _result(
    module: LabelwiseModule,
    *,
    valid_outputs: torch.Tensor,
    best_val_loss: Callable[[], float],
    checkpoint: Path | None,
    stopped_reason: StopReason,
    guards: list[dict[str, Any]],
) -> TrainResult:
    history = module.history
    best = min(history, key=lambda row: row["val_loss"]) if checkpoint and history else None
    return TrainResult(
        network=module.network.cpu().eval(),
        best_epoch=int(best["epoch"]) if best else -1,
        epochs_run=len(history),
        stopped_reason=stopped_reason,
        history=history,
        valid_outputs=valid_outputs,
        # Without a checkpoint (no epoch finished) the last weights are kept: score them.
        best_val_loss=float(best["val_loss"]) if best else best_val_loss(),
        checkpoint=checkpoint,
        guards=guards,
    )


@dataclass(frozen=True)
class _Callbacks:
    early_stopping: EarlyStopping
    checkpoint: ModelCheckpoint
    timer: Timer | None
    extra: list[Callback]

    @classmethod
    def create(
        cls, config: TrainConfig, *, run_dir: Path, progress_bar: bool, steps: int, more: Sequence[Callback]
    ) -> _Callbacks:
        early = EarlyStopping(monitor="val_loss", mode="min", patience=config.patience, check_finite=True)
        checkpoint = ModelCheckpoint(
            dirpath=checkpoint_dir(run_dir),
            filename=BEST,
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            save_weights_only=True,
            enable_version_counter=False,  # overwrite best.ckpt of an earlier run in the same directory
        )
        # The whole state after every validated epoch, for resume; overwritten in place (monitor=None keeps one).
        last = ModelCheckpoint(dirpath=checkpoint_dir(run_dir), filename=LAST, enable_version_counter=False)
        timer = None if config.time_budget is None else Timer(timedelta(seconds=config.time_budget), verbose=False)
        extra: list[Callback] = [last, *more]
        if progress_bar:
            extra.append(progress_callback(steps=steps))
        return cls(early, checkpoint, timer, extra)

    def as_list(self) -> list[Callback]:
        timer: list[Callback] = [self.timer] if self.timer is not None else []
        return [self.early_stopping, self.checkpoint, *timer, *self.extra]


def _build_trainer(
    config: TrainConfig,
    *,
    callbacks: _Callbacks,
    run_dir: Path,
    max_epochs: int,
    progress_bar: bool,
    own_sampler: bool = False,
) -> L.Trainer:
    return L.Trainer(
        **trainer_options(config, own_sampler=own_sampler),
        max_epochs=max_epochs,
        callbacks=callbacks.as_list(),
        logger=create_loggers(config.loggers, run_dir=run_dir),
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=1,  # we log once per epoch; this only silences the "logging interval" advice
        enable_progress_bar=any(isinstance(c, TQDMProgressBar) for c in callbacks.extra),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
    )


def _restore_best(module: LabelwiseModule, checkpoint: ModelCheckpoint) -> Path | None:
    path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    if path is None or not path.is_file():
        return None  # no epoch finished (time budget shorter than one epoch): keep the last weights
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    return path


def _stopped_reason(callbacks: _Callbacks, *, interrupted: bool) -> StopReason:
    if interrupted:
        return "interrupted"
    if callbacks.early_stopping.stopped_epoch > 0:
        return "early_stopping"
    if callbacks.timer is not None and (callbacks.timer.time_remaining("train") or 0.0) <= 0.0:
        return "time_budget"
    return "max_epochs"
