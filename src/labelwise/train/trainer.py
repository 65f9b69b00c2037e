"""`fit_network`: train a network with Lightning and return it with its best weights restored.

Callbacks: early stopping on ``val_loss``, a checkpoint on every improvement (``run_dir/checkpoints/best.ckpt``)
and of the whole training state after every epoch (``last.ckpt``, what ``resume=True`` continues from; see
`labelwise.train.checkpoints`), a Timer for ``time_budget``, and a progress bar; metrics per epoch go to
``run_dir/logs/metrics.csv`` (and to TensorBoard / MLflow with ``config.loggers``). Ctrl+C stops after the current
step and returns the best epoch so far (a second Ctrl+C interrupts for real).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, Timer, TQDMProgressBar
from torch import nn
from torch.utils.data import DataLoader, Dataset

from labelwise.errors import ConfigError, DataError, TrainingError, format_rows
from labelwise.task import Task
from labelwise.train.batches import (
    EpochBatches,
    InMemoryDataset,
    TensorPair,
    make_loader,
    predict_logits,
    steps_per_epoch,
)
from labelwise.train.checkpoints import BEST, LAST, AtomicCheckpointIO, BatchOrder, checkpoint_dir, last_checkpoint
from labelwise.train.config import TrainConfig
from labelwise.train.guards import create_guards
from labelwise.train.loggers import create_loggers, logging_environment
from labelwise.train.module import LabelwiseModule

__all__ = ["StopReason", "TrainResult", "fit_network"]

StopReason = Literal["early_stopping", "time_budget", "max_epochs", "interrupted"]
_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
# Lightning advice that does not apply to in-memory tensors, and notices about reusing a run directory.
_EXPECTED_WARNINGS = (
    r".*does not have many workers.*",
    r".*is smaller than the logging interval.*",
    r".*exists and is not empty.*",
    # Lightning 2.6's pytree helper against torch >= 2.10 (LeafSpec deprecation); harmless.
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What training produced.

    Attributes:
        network: the network with the best epoch's weights, on the CPU, in eval mode.
        best_epoch: 0-based epoch with the lowest validation loss (-1 if no epoch finished).
        epochs_run: epochs that finished.
        stopped_reason: ``"early_stopping"``, ``"time_budget"``, ``"max_epochs"`` or ``"interrupted"``.
        history: one dict per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``lr``.
        valid_logits: ``(N_valid, head_width)`` float32 logits of the best weights on the validation rows, in order.
        best_val_loss: validation loss of the best epoch.
        checkpoint: path of the best checkpoint, or None if none was written.
        guards: the training guards' findings (`labelwise.train.guards`): ``dict(epoch, rule, message)`` each.
    """

    network: nn.Module
    best_epoch: int
    epochs_run: int
    stopped_reason: StopReason
    history: list[dict[str, float]] = field(default_factory=list)
    valid_logits: torch.Tensor
    best_val_loss: float
    checkpoint: Path | None = None
    guards: list[dict[str, Any]] = field(default_factory=list)


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
        >>> result.epochs_run, result.valid_logits.shape
        (2, torch.Size([64, 1]))
    """
    run_dir = Path(run_dir)
    L.seed_everything(config.seed, workers=True, verbose=False)
    train_data, valid_data = _as_dataset(train, "train"), _as_dataset(valid, "valid")
    loaders = _Loaders.create(train_data, valid_data, config=config)
    max_epochs = config.resolve_epochs(loaders.steps_per_epoch)
    module = LabelwiseModule(
        network,
        loss,
        lr=config.resolve_lr(),
        weight_decay=config.weight_decay,
        batch_size=loaders.batch_size,
        total_steps=max_epochs * loaders.steps_per_epoch,
    )
    guards = create_guards(
        task,
        action=config.guards,
        loss=loss,
        train_targets=_targets_at_hand(train_data),
        valid_targets=_targets_at_hand(valid_data),
    )
    callbacks = _Callbacks.create(
        config,
        run_dir=run_dir,
        progress_bar=progress_bar,
        steps=len(loaders.train),
        more=[*guards, *_batch_order(loaders.train)],
    )
    with _quiet_lightning(), logging_environment(config.loggers):
        trainer = _build_trainer(
            config, callbacks=callbacks, run_dir=run_dir, max_epochs=max_epochs, progress_bar=progress_bar
        )
        resume_from = last_checkpoint(run_dir) if resume else None
        with _stop_on_sigint(trainer) as interrupted, _naming_kept_checkpoints(run_dir):
            trainer.fit(module, loaders.train, loaders.valid, ckpt_path=resume_from, weights_only=True)
    checkpoint = _restore_best(module, callbacks.checkpoint)
    # Lightning hands the model back on the CPU; the validation pass runs where training ran.
    valid_logits = predict_logits(
        module.network, valid_data, batch_size=loaders.valid_batch_size, device=trainer.strategy.root_device
    )
    return _result(
        module,
        valid_logits=valid_logits,
        best_val_loss=lambda: float(loss(valid_logits, _targets(valid_data))),
        checkpoint=checkpoint,
        stopped_reason=_stopped_reason(callbacks, interrupted=bool(interrupted)),
        guards=[finding for guard in guards for finding in guard.findings],
    )


def _result(
    module: LabelwiseModule,
    *,
    valid_logits: torch.Tensor,
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
        valid_logits=valid_logits,
        # Without a checkpoint (no epoch finished) the last weights are kept: score them.
        best_val_loss=float(best["val_loss"]) if best else best_val_loss(),
        checkpoint=checkpoint,
        guards=guards,
    )


@dataclass(frozen=True)
class _Loaders:
    train: DataLoader[Any]
    valid: DataLoader[Any]
    batch_size: int
    valid_batch_size: int
    steps_per_epoch: int

    @classmethod
    def create(cls, train: Dataset[Any], valid: Dataset[Any], *, config: TrainConfig) -> _Loaders:
        batch_size = config.resolve_batch_size(len(train))  # type: ignore[arg-type]
        group = _group_size(train, batch_size)
        workers = config.num_workers
        train_loader = make_loader(
            train, batch_size=batch_size, shuffle=True, seed=config.seed, num_workers=workers, group=group
        )
        # Validation holds no gradients: larger batches, fewer trips through Lightning's loop.
        valid_batch_size = max(batch_size * group, 256)
        valid_loader = make_loader(valid, batch_size=valid_batch_size, shuffle=False, seed=0, num_workers=workers)
        return cls(train_loader, valid_loader, batch_size, valid_batch_size, steps_per_epoch(train_loader))


def _group_size(data: Dataset[Any], batch_size: int) -> int:
    """Batches fetched per Lightning step: ~8192 table rows (at most 64 batches); images one batch at a time.

    A table step takes ~1 ms on a CPU, as long as Lightning's hooks around it; sharing them among several
    steps keeps fit_network within 10% of a bare loop. Image steps are long enough on their own, and their
    float batches after the transform would hold many batches in memory at once.
    """
    if isinstance(data, InMemoryDataset) and data.inputs.ndim == 2 and data.transform is None:
        return max(1, min(64, 8192 // batch_size))
    return 1


def _batch_order(loader: DataLoader[Any]) -> list[Callback]:
    """The callback that checkpoints the training loader's shuffling generator (none if it has none)."""
    sampler = loader.sampler
    generator = sampler.generator if isinstance(sampler, EpochBatches) else loader.generator
    return [BatchOrder(generator)] if generator is not None else []


def _as_dataset(data: TensorPair | Dataset[Any], name: str) -> Dataset[Any]:
    if isinstance(data, tuple):
        if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
            raise ConfigError(
                f"{name}= must be an (inputs, targets) pair of tensors or a Dataset; got a tuple of {len(data)}."
            )
        data = InMemoryDataset(data[0], data[1])
    if not isinstance(data, Dataset):
        raise ConfigError(
            f"{name}= must be an (inputs, targets) pair of tensors or a Dataset; got {type(data).__name__}."
        )
    minimum = 2 if name == "train" else 1  # BatchNorm cannot train on a single row
    if len(data) < minimum:  # type: ignore[arg-type]
        raise DataError(
            f"the {name} data has {len(data)} rows; training needs at least {minimum} {name} rows."  # type: ignore[arg-type]
        )
    if isinstance(data, InMemoryDataset) and data.inputs.is_floating_point():
        bad = (~torch.isfinite(data.inputs.reshape(len(data.inputs), -1))).any(dim=1).nonzero().flatten()
        if len(bad):
            raise DataError(
                f"the {name} inputs hold NaN or infinite values in {format_rows(bad.tolist())}; a network cannot "
                "train on them. Impute or drop those values (labelwise's table preprocessing imputes missing values)."
            )
    return data


def _targets_at_hand(data: Dataset[Any]) -> torch.Tensor | None:
    """The targets when held in memory; another Dataset would be read item by item (images decoded) to get them."""
    return data.targets if isinstance(data, InMemoryDataset) else None


def _targets(data: Dataset[Any]) -> torch.Tensor:
    if isinstance(data, InMemoryDataset):
        return data.targets
    return torch.stack([torch.as_tensor(item[1]) for item in data])  # type: ignore[attr-defined]


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
            # ~10 refreshes per epoch: redrawing the bar after every small step costs as much as the step.
            extra.append(TQDMProgressBar(refresh_rate=max(1, steps // 10)))
        return cls(early, checkpoint, timer, extra)

    def as_list(self) -> list[Callback]:
        timer: list[Callback] = [self.timer] if self.timer is not None else []
        return [self.early_stopping, self.checkpoint, *timer, *self.extra]


def _build_trainer(
    config: TrainConfig, *, callbacks: _Callbacks, run_dir: Path, max_epochs: int, progress_bar: bool
) -> L.Trainer:
    return L.Trainer(
        accelerator=config.accelerator,
        devices=1,
        max_epochs=max_epochs,
        callbacks=callbacks.as_list(),
        logger=create_loggers(config.loggers, run_dir=run_dir),
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=1,  # we log once per epoch; this only silences the "logging interval" advice
        enable_progress_bar=progress_bar,
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


@contextmanager
def _naming_kept_checkpoints(run_dir: Path) -> Iterator[None]:
    """Add to a training failure where the checkpoints of the last good epoch are kept."""
    try:
        yield
    except TrainingError as err:
        if last_checkpoint(run_dir) is None:
            raise
        raise TrainingError(
            f"{err} The checkpoints of the last good epoch are kept in {str(checkpoint_dir(run_dir))!r}."
        ) from err


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's INFO banner (devices, tips) and its warnings that do not apply here, and lift its
    NVML-based CUDA check for the duration of training.

    Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (so that forked workers can still use CUDA),
    which makes ``torch.cuda.is_available()`` load the NVML library on every call, and AdamW calls it on every
    step: ~0.1-0.3 ms per step, as much as a whole step on a small table. Our workers never touch CUDA.
    """
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    nvml_check = os.environ.pop(_NVML_CHECK, None)
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if nvml_check is not None:
            os.environ[_NVML_CHECK] = nvml_check


@contextmanager
def _stop_on_sigint(trainer: L.Trainer) -> Iterator[list[bool]]:
    """The first Ctrl+C asks the trainer to stop after the current step; the handler is then removed.

    Lightning's own KeyboardInterrupt handling ends the process (``sys.exit``), too much for a library call.
    """
    interrupted: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signal handlers can only be installed from the main thread
        return
    previous = signal.getsignal(signal.SIGINT)

    def stop(signum: int, frame: Any) -> None:
        interrupted.append(True)
        trainer.should_stop = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, stop)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
