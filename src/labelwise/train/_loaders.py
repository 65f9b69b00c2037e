"""The data side of `labelwise.train.trainer.fit_network`: datasets from what the caller passes, and their loaders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset, IterableDataset

from labelwise.data.narrow import Widening
from labelwise.errors import ConfigError, DataError, format_rows
from labelwise.train.batches import EpochBatches, InMemoryDataset, TensorPair, make_loader, steps_per_epoch
from labelwise.train.checkpoint_io import BatchOrder
from labelwise.train.config import TrainConfig
from labelwise.train.distributed import check_rows_per_process, world_size

__all__ = ["Loaders", "as_dataset", "batch_order", "group_size", "targets_at_hand", "targets_of"]


@dataclass(frozen=True)
class Loaders:
    """The training and validation loaders of one fit, their batch sizes and the steps in an epoch."""

    train: DataLoader[Any]
    valid: DataLoader[Any]
    batch_size: int
    valid_batch_size: int
    steps_per_epoch: int

    @classmethod
    def create(cls, train: Dataset[Any], valid: Dataset[Any], *, config: TrainConfig) -> Loaders:
        if isinstance(train, IterableDataset):
            return cls.streamed(train, valid)
        batch_size = config.resolve_batch_size(len(train))  # type: ignore[arg-type]
        group = group_size(train, batch_size)
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
    def streamed(cls, train: IterableDataset[Any], valid: Dataset[Any]) -> Loaders:
        """A `ParquetStream` brings its batch size, workers and step count (it shards and batches itself)."""
        from labelwise.data.streaming import ParquetStream  # deferred: pyarrow only for streamed runs

        if not isinstance(train, ParquetStream):
            raise ConfigError(f"train= is a {type(train).__name__}; expected a ParquetStream.")
        valid_batch_size = max(train.batch_size * train.group, 256)
        valid_loader = make_loader(
            valid, batch_size=valid_batch_size, shuffle=False, seed=0, num_replicas=train.world_size
        )
        return cls(train.loader(), valid_loader, train.batch_size, valid_batch_size, train.steps_per_epoch)


def group_size(data: Dataset[Any], batch_size: int) -> int:
    """Batches fetched per Lightning step: ~8192 table rows (at most 64 batches); images one batch at a time.

    A table step takes ~1 ms on a CPU, as long as Lightning's hooks around it; sharing them among several
    steps keeps fit_network within 10% of a bare loop (also for narrow rows, `labelwise.data.narrow`, widened per
    batch). Image steps are long enough on their own, and their
    float batches after the transform would hold many batches in memory at once.
    """
    widened = isinstance(data, InMemoryDataset) and isinstance(data.transform, Widening)  # narrow table rows
    if isinstance(data, InMemoryDataset) and data.inputs.ndim == 2 and (data.transform is None or widened):
        return max(1, min(64, 8192 // batch_size))
    return 1


def batch_order(loader: DataLoader[Any]) -> list[Callback]:
    """The callback that checkpoints the training loader's shuffling generator (none if it has none)."""
    sampler = loader.sampler
    generator = sampler.generator if isinstance(sampler, EpochBatches) else loader.generator
    return [BatchOrder(generator)] if generator is not None else []


def as_dataset(data: TensorPair | Dataset[Any], name: str) -> Dataset[Any]:
    """``data`` as a Dataset, checked: enough rows, and finite inputs when they are in memory."""
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
        rows = data.inputs.reshape(len(data.inputs), -1)
        finite = torch.isfinite(rows)
        if isinstance(data.transform, Widening):  # narrow rows hold NaN for a missing value; widening fills it
            columns = torch.from_numpy(data.transform.value_columns)
            finite[:, columns] |= rows[:, columns].isnan()
        bad = (~finite).any(dim=1).nonzero().flatten()
        if len(bad):
            raise DataError(
                f"the {name} inputs hold NaN or infinite values in {format_rows(bad.tolist())}; a network cannot "
                "train on them. Impute or drop those values (labelwise's table preprocessing imputes missing values)."
            )
    return data


def targets_at_hand(data: Dataset[Any]) -> torch.Tensor | None:
    """The targets when held in memory; another Dataset would be read item by item (images decoded) to get them."""
    return data.targets if isinstance(data, InMemoryDataset) else None


def targets_of(data: Dataset[Any]) -> torch.Tensor:
    """Every target of ``data``, in order (another Dataset than `InMemoryDataset` is read item by item)."""
    if isinstance(data, InMemoryDataset):
        return data.targets
    return torch.stack([torch.as_tensor(item[1]) for item in data])  # type: ignore[attr-defined]
