"""`fit_network`: train a network with Lightning and return it with its best weights restored.

Callbacks: early stopping on ``val_loss``, a checkpoint on every improvement (``run_dir/checkpoints/best.ckpt``)
and of the whole training state after every epoch (``last.ckpt``, what ``resume=True`` continues from; see
`labelwise.train.checkpoints`), a Timer for ``time_budget``, and a progress bar; metrics per epoch go to
``run_dir/logs/metrics.csv`` (and to TensorBoard / MLflow with ``config.loggers``). Ctrl+C stops after the current
step and returns the best epoch so far (a second Ctrl+C interrupts for real).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, Timer, TQDMProgressBar
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from labelwise.errors import ConfigError, DataError, format_rows
from labelwise.models.head import backbone_and_head
from labelwise.task import Task
from labelwise.train._running import naming_kept_checkpoints, quiet_lightning, stop_on_sigint
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
from labelwise.train.distributed import check_rows_per_process, trainer_options, world_size
from labelwise.train.guards import create_guards
from labelwise.train.head_loss import HeadLoss
from labelwise.train.loggers import create_loggers, logging_environment
from labelwise.train.module import LabelwiseModule

__all__ = ["StopReason", "TrainResult", "fit_network"]

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
        valid_logits: ``(N_valid, head_width)`` float32 logits of the best weights on the validation rows, in order;
            None when a large head's loss trained it (`labelwise.train.head_loss`): see ``valid_features``.
        best_val_loss: validation loss of the best epoch.
        checkpoint: path of the best checkpoint, or None if none was written.
        guards: the training guards' findings (`labelwise.train.guards`): ``dict(epoch, rule, message)`` each.
        valid_features: ``(N_valid, num_features)`` backbone features of the validation rows, in order, when a large
            head's loss trained the network (its logits are computed in class chunks from these); else None.
    """

    network: nn.Module
    best_epoch: int
    epochs_run: int
    stopped_reason: StopReason
    history: list[dict[str, float]] = field(default_factory=list)
    valid_logits: torch.Tensor | None
    best_val_loss: float
    checkpoint: Path | None = None
    guards: list[dict[str, Any]] = field(default_factory=list)
    valid_features: torch.Tensor | None = None


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
        sliced_batches=isinstance(loaders.train.sampler, EpochBatches),
        total_steps=max_epochs * loaders.steps_per_epoch,
    )
    guards = create_guards(
        task,
        # The guards read each validation batch's (N, C) logits, which a large head's loss never computes.
        action="off" if isinstance(loss, HeadLoss) else config.guards,
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
    with quiet_lightning(), logging_environment(config.loggers):
        trainer = _build_trainer(
            config,
            callbacks=callbacks,
            run_dir=run_dir,
            max_epochs=max_epochs,
            progress_bar=progress_bar,
            own_sampler=any(isinstance(loader.sampler, EpochBatches) for loader in (loaders.train, loaders.valid)),
        )
        resume_from = last_checkpoint(run_dir) if resume else None
        with stop_on_sigint(trainer) as interrupted, naming_kept_checkpoints(run_dir):
            trainer.fit(module, loaders.train, loaders.valid, ckpt_path=resume_from, weights_only=True)
    # Ranks > 0 keep the last weights: rank 0 alone returns the run (and may be renaming its folder by then).
    checkpoint = _restore_best(module, callbacks.checkpoint) if trainer.is_global_zero else None
    valid_logits, valid_features, best_val_loss = _validation_outputs(
        module, valid_data, loss, batch_size=loaders.valid_batch_size, device=trainer.strategy.root_device
    )
    return _result(
        module,
        valid_logits=valid_logits,
        valid_features=valid_features,
        best_val_loss=best_val_loss,
        checkpoint=checkpoint,
        stopped_reason=_stopped_reason(callbacks, interrupted=bool(interrupted)),
        guards=[finding for guard in guards for finding in guard.findings],
    )


def _validation_outputs(
    module: LabelwiseModule, valid: Dataset[Any], loss: nn.Module, *, batch_size: int, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None, Callable[[], float]]:
    """The best weights' logits on the validation rows, or their features for a large head's loss; and a function
    scoring the validation loss from them. Lightning hands the model back on the CPU; the pass runs where training
    ran."""
    network, targets = module.network, _targets(valid)
    if not (isinstance(loss, HeadLoss) and loss.ranks_in_chunks):
        logits = predict_logits(network, valid, batch_size=batch_size, device=device)
        score = loss.from_logits if isinstance(loss, HeadLoss) else loss
        return logits, None, lambda: float(score(logits, targets))
    backbone, head = backbone_and_head(network)
    features = predict_logits(backbone, valid, batch_size=batch_size, device=device)
    return None, features, lambda: float(loss(features, head, targets, train=False))


def _result(
    module: LabelwiseModule,
    *,
    valid_logits: torch.Tensor | None,
    valid_features: torch.Tensor | None,
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
        valid_features=valid_features,
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
        if isinstance(train, IterableDataset):
            return cls.streamed(train, valid)
        batch_size = config.resolve_batch_size(len(train))  # type: ignore[arg-type]
        group = _group_size(train, batch_size)
        workers, replicas = config.num_workers, world_size(config)
        check_rows_per_process(batch_size=batch_size, num_valid=len(valid), num_replicas=replicas)  # type: ignore[arg-type]
        train_loader = make_loader(
            train,
            batch_size=batch_size,
            shuffle=True,
            seed=config.seed,
            num_workers=workers,
            group=group,
            num_replicas=replicas,
        )
        # Validation holds no gradients: larger batches, fewer trips through Lightning's loop.
        valid_batch_size = max(batch_size * group, 256)
        valid_loader = make_loader(
            valid, batch_size=valid_batch_size, shuffle=False, seed=0, num_workers=workers, num_replicas=replicas
        )
        return cls(train_loader, valid_loader, batch_size, valid_batch_size, steps_per_epoch(train_loader))

    @classmethod
    def streamed(cls, train: IterableDataset[Any], valid: Dataset[Any]) -> _Loaders:
        """A `ParquetStream` brings its batch size, workers and step count (it shards and batches itself)."""
        from labelwise.data.streaming import ParquetStream  # deferred: pyarrow only for streamed runs

        if not isinstance(train, ParquetStream):
            raise ConfigError(f"train= is a {type(train).__name__}; expected a ParquetStream.")
        valid_batch_size = max(train.batch_size * train.group, 256)
        valid_loader = make_loader(
            valid, batch_size=valid_batch_size, shuffle=False, seed=0, num_replicas=train.world_size
        )
        return cls(train.loader(), valid_loader, train.batch_size, valid_batch_size, train.steps_per_epoch)


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
    if not isinstance(data, IterableDataset) and len(data) < minimum:  # type: ignore[arg-type]
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
