"""Batches from in-memory tensors without per-item Python work, and batched inference.

A DataLoader over a `TensorDataset` calls ``__getitem__`` once per item and collates the items again;
for a table of small rows that costs more than the training step. Here the sampler yields whole index
tensors and the dataset answers with one indexing operation per batch (``inputs[indices]``); an image
``transform`` (normalization, augmentation) also runs once per batch, vectorised. For tables several batches
are fetched at once (``group``) and the training step walks through them, so that the fixed cost of one
Lightning step (~1 ms of hooks on a CPU) is shared by several optimizer steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sized
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from labelwise.errors import ConfigError, DataError

__all__ = [
    "EpochBatches",
    "GroupedDataset",
    "InMemoryDataset",
    "TensorPair",
    "Transform",
    "make_loader",
    "predict_logits",
    "scale_pixels",
    "split_rows",
    "steps_per_epoch",
    "to_device",
]

TensorPair = tuple[torch.Tensor, torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]
# A batch of several input groups, as the combined backbone takes it (`labelwise.models.combiner`).
GroupBatch = Mapping[str, torch.Tensor]


class _RowIndexed(Protocol):
    """Rows of several input groups (`labelwise.inputs.Values`): a length and a lookup of many rows at once."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: torch.Tensor) -> Any: ...


def split_rows(batch: torch.Tensor | GroupBatch, size: int) -> list[Any]:
    """``torch.split(batch, size)`` along the rows, of a tensor or of each group of a dict of tensors.

    Example:
        >>> [part["a"].tolist() for part in split_rows({"a": torch.arange(3)}, 2)]
        [[0, 1], [2]]
    """
    if isinstance(batch, torch.Tensor):
        return list(torch.split(batch, size))
    pieces = {key: torch.split(value, size) for key, value in batch.items()}
    return [dict(zip(pieces, parts, strict=True)) for parts in zip(*pieces.values(), strict=True)]


def to_device(batch: torch.Tensor | GroupBatch, device: torch.device | str) -> Any:
    """``batch`` on ``device``: a tensor, or each tensor of a dict of groups."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def scale_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(..., C, H, W)`` to float32 in [-1, 1]: the fallback when no image transform is given.

    Example:
        >>> scale_pixels(torch.tensor([0, 255], dtype=torch.uint8))
        tensor([-1.,  1.])
    """
    return pixels.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


class InMemoryDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Rows of ``inputs`` (and ``targets``) addressed by an index tensor, one batch per lookup.

    Args:
        inputs: ``(N, F)`` float features, ``(N, C, H, W)`` float images, or ``(N, C, H, W)`` uint8 images.
        targets: ``(N,)`` or ``(N, C)`` from ``task.encode``; None for unlabelled data (read as ``(N,)`` zeros).
        transform: applied to each uint8 batch ``(B, C, H, W)``, returning float32 ``(B, C, H, W)``
            (e.g. ``labelwise.data.images.image_transforms(spec, train=True)``). None: uint8 images are
            scaled with `scale_pixels`, float inputs pass unchanged.

    Example:
        >>> data = InMemoryDataset(torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 0]))
        >>> data[torch.tensor([2, 0])]
        (tensor([[4., 5.],
                [0., 1.]]), tensor([0, 0]))
    """

    def __init__(
        self, inputs: torch.Tensor, targets: torch.Tensor | None = None, *, transform: Transform | None = None
    ) -> None:
        if targets is not None and len(targets) != len(inputs):
            raise DataError(
                f"inputs hold {len(inputs)} rows but targets hold {len(targets)}; they must be aligned row by row."
            )
        self.inputs = inputs
        self.targets = targets if targets is not None else torch.zeros(len(inputs))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.inputs[indices]
        if self.transform is not None:
            batch = self.transform(batch)
        elif batch.dtype == torch.uint8:
            batch = scale_pixels(batch)
        return batch, self.targets[indices]


class GroupedDataset(Dataset[tuple[Any, torch.Tensor]]):
    """`InMemoryDataset` for inputs of several groups: one lookup of every group per batch, then ``transform``.

    Args:
        inputs: rows of every group (`labelwise.inputs.Values`), indexed by an index tensor.
        targets: ``(N,)`` or ``(N, C)`` from ``task.encode``.
        transform: a batch of ``inputs`` -> what the network takes (a dict of one tensor per group).
    """

    def __init__(self, inputs: _RowIndexed, targets: torch.Tensor, *, transform: Callable[[Any], Any]) -> None:
        if len(targets) != len(inputs):
            raise DataError(
                f"inputs hold {len(inputs)} rows but targets hold {len(targets)}; they must be aligned row by row."
            )
        self.inputs, self.targets, self.transform = inputs, targets, transform

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, indices: torch.Tensor | int) -> tuple[Any, torch.Tensor]:
        if isinstance(indices, int):  # item by item (`for x, y in dataset`): one row, without the batch dimension
            batch, targets = self[torch.tensor([indices])]
            return {key: value[0] for key, value in batch.items()}, targets[0]
        return self.transform(self.inputs[indices]), self.targets[indices]


class EpochBatches(Sampler[torch.Tensor]):
    """Index tensors of one epoch: a fresh seeded permutation per epoch (``shuffle``) or 0..N-1 in order.

    The epoch is cut into batches of ``batch_size`` rows; ``group`` consecutive batches are handed out
    together as one index tensor (the training step splits them again), so that per-fetch costs are paid
    once per group. A final batch of one row is dropped when shuffling, because BatchNorm cannot train on
    it; in order (inference) every row is kept.

    With ``num_replicas`` > 1 processes (DDP, see `labelwise.train.distributed`) every process permutes alike (same
    seed) and takes its own part of each batch (``torch.tensor_split`` into ``num_replicas`` parts, by the rank of
    the process group), so all take the same number of steps, each row once per epoch. A final batch too short to
    give every process 2 rows (1 in order) is dropped when shuffling and merged into the one before in order.

    Args:
        num_samples: rows in the dataset.
        batch_size: rows per batch (per optimizer step).
        shuffle: permute the rows each epoch.
        seed: seeds the permutations, so the batch order depends on nothing but the seed.
        group: batches per yielded index tensor.
        num_replicas: processes sharing each batch; the rank is read from ``torch.distributed`` when iterating.

    Example:
        >>> [t.tolist() for t in EpochBatches(5, batch_size=2, shuffle=False)]
        [[0, 1], [2, 3], [4]]
        >>> [len(t) for t in EpochBatches(9, batch_size=2, shuffle=True, group=2)]
        [4, 4]
    """

    def __init__(
        self, num_samples: int, *, batch_size: int, shuffle: bool, seed: int = 0, group: int = 1, num_replicas: int = 1
    ) -> None:
        super().__init__()
        self.num_samples, self.batch_size, self.shuffle, self.group = num_samples, batch_size, shuffle, group
        self.num_replicas = num_replicas
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def num_batches(self) -> int:
        """Batches (optimizer steps) per epoch."""
        full, rest = divmod(self.num_samples, self.batch_size)
        # Every process needs 2 rows of the final batch to train (BatchNorm), 1 to validate.
        need = (2 if self.shuffle else 1) * self.num_replicas
        return full + int(rest > 0 and (rest >= need or full == 0))

    def __len__(self) -> int:
        return -(-self.num_batches // self.group)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.num_batches == 0:
            return  # torch.arange(0).split(n) would yield one empty batch
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=self.generator)
        else:
            order = torch.arange(self.num_samples)
        if self.shuffle:
            order = order[: min(self.num_samples, self.num_batches * self.batch_size)]
        if self.num_replicas == 1:
            yield from torch.split(order, self.batch_size * self.group)
            return
        batches = list(torch.split(order, self.batch_size))
        if len(batches) > self.num_batches:  # in order: the short final batch joins the one before
            batches[-2:] = [torch.cat(batches[-2:])]
        rank = _rank(self.num_replicas)
        parts = [torch.tensor_split(batch, self.num_replicas)[rank] for batch in batches]
        for start in range(0, len(parts), self.group):
            yield torch.cat(parts[start : start + self.group])


def make_loader(
    data: Dataset[Any],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    group: int = 1,
    num_replicas: int = 1,
) -> DataLoader[Any]:
    """A DataLoader over ``data``: whole-batch lookups for the in-memory datasets, per-item collation otherwise.

    ``group`` batches are fetched together for an `InMemoryDataset` (see `EpochBatches`), each process of
    ``num_replicas`` taking its part of every batch; other datasets always yield single batches (Lightning's
    DistributedSampler slices them).
    """
    workers: dict[str, Any] = {"num_workers": num_workers, "persistent_workers": num_workers > 0}
    if isinstance(data, InMemoryDataset | GroupedDataset):
        sampler = EpochBatches(
            len(data), batch_size=batch_size, shuffle=shuffle, seed=seed, group=group, num_replicas=num_replicas
        )
        # batch_size=None: each sampler element is already a batch of indices; no collation.
        return DataLoader(data, batch_size=None, sampler=sampler, **workers)
    size = len(cast(Sized, data))
    generator = torch.Generator().manual_seed(seed)
    # Drop a final batch of one when shuffling: BatchNorm cannot train on it.
    drop_last = shuffle and size % batch_size == 1 and size > batch_size
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last, **workers)


def _rank(num_replicas: int) -> int:
    """This process's rank among ``num_replicas``; refuses a process group of another size."""
    connected = torch.distributed.is_available() and torch.distributed.is_initialized()
    size, rank = (torch.distributed.get_world_size(), torch.distributed.get_rank()) if connected else (1, 0)
    if size != num_replicas:
        raise ConfigError(
            f"the batches were cut for {num_replicas} processes but {size} are training; pass the same devices and "
            "nodes to TrainConfig as to the launcher (torchrun --nproc-per-node / srun --ntasks-per-node)."
        )
    return int(rank)


def steps_per_epoch(loader: DataLoader[Any]) -> int:
    """Optimizer steps in one epoch of a loader from `make_loader`."""
    sampler = loader.sampler
    return sampler.num_batches if isinstance(sampler, EpochBatches) else len(loader)


def predict_logits(
    network: nn.Module,
    data: torch.Tensor | Dataset[Any],
    *,
    batch_size: int = 256,
    transform: Transform | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Logits of ``network`` on every row of ``data``, in order, in eval mode without gradients.

    Args:
        network: maps a batch to ``(N, head_width)`` logits.
        data: inputs as for `InMemoryDataset`, or a Dataset of ``(x, y)`` items.
        batch_size: rows per forward pass.
        transform: batch transform for uint8 images (the eval one: no augmentation).
        device: where to run; None: where the network's parameters are.

    Returns:
        ``(N, head_width)`` float32 logits on the CPU.

    Example:
        >>> predict_logits(nn.Linear(3, 2), torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """
    dataset = InMemoryDataset(data, transform=transform) if isinstance(data, torch.Tensor) else data
    if device is None:
        device = next((p.device for p in network.parameters()), torch.device("cpu"))
    was_training = network.training
    network.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for inputs, _ in make_loader(dataset, batch_size=batch_size, shuffle=False, seed=0):
                outputs.append(network(to_device(inputs, device)).float().cpu())
    finally:
        network.train(was_training)
    if not outputs:
        raise DataError("predict_logits got no rows; pass at least one input row.")
    return torch.cat(outputs)
