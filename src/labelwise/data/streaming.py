"""Read a Parquet file or folder larger than memory as a stream of ready training batches.

`scan_parquet` reads only the footers: the files, their row groups and row counts, and a schema check across files.
`ParquetStream` is an ``IterableDataset`` yielding ``(inputs, targets)`` tensors of several batches at once (as
`labelwise.train.batches.EpochBatches` does for in-memory tables), built per record batch by the fitted
preprocessor and ``task.encode``: per-row Python work would cost more than the training step.

Sharding. The row groups (work units) are shuffled with a seed that changes every epoch, and their training rows
are laid end to end; rank ``r`` of ``world_size`` takes the ``r``-th equal slice of that sequence and DataLoader
worker ``w`` the ``w``-th slice of its rank's slice (global shard ``rank * num_workers + worker_id``). So every
training row is read exactly once per epoch by exactly one worker, except: with several ranks each takes
``floor(T / world_size)`` rows, so that all ranks take the same number of steps (DDP hangs otherwise), dropping the
last ``T mod world_size`` rows of the epoch's order (fewer than ``world_size``; other rows each epoch); and a worker
whose rows would end in a batch of one drops that row (BatchNorm cannot train on one row).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from labelwise.data.parquet_scan import ParquetScan, read_unit
from labelwise.data.stream_rows import ValidRule, fill_text
from labelwise.data.tables import TablePreprocessor
from labelwise.errors import ConfigError
from labelwise.task import Task

__all__ = ["SHUFFLE_BUFFER_ROWS", "ParquetStream"]

# Rows shuffled together inside a shard: ~5 MB of float32 at 20 features, spanning several row groups of a typical
# writer (64k-1M rows per group), so a batch mixes rows of more than one group while memory stays bounded.
SHUFFLE_BUFFER_ROWS = 65_536


@dataclass(frozen=True)
class _Piece:
    """Training rows ``begin:end`` (counted among the unit's training rows) of one work unit."""

    unit: int
    begin: int
    end: int


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` sizes differing by at most one, larger ones first."""
    return [total // parts + int(i < total % parts) for i in range(parts)]


class ParquetStream(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """Training batches streamed from Parquet, sharded by rank and DataLoader worker (see the module docstring).

    Args:
        scan: the files, from `scan_parquet`.
        task: encodes the target column.
        preprocessor: turns the feature columns into floats (fitted on a sample, see `labelwise.data.stream_prep`).
        target: the target column.
        valid_rule: which rows are validation rows; they are skipped here.
        batch_size: rows per optimizer step.
        group: batches per yielded tensor pair (the training step splits them again).
        seed: seeds the epoch's order of row groups and the shuffle buffer.
        num_workers: DataLoader workers the stream is read with (it must know them to count its batches).
        rank: this process's rank; None: looked up when an epoch starts (the process group exists only once
            Lightning has launched the processes): from ``torch.distributed`` when initialised, else ``$RANK``, else 0.
        world_size: processes training in all (e.g. ``labelwise.train.distributed.world_size(config)``); None: from
            ``torch.distributed`` when initialised, else ``$WORLD_SIZE``, else 1. It is needed up front: the
            one-cycle schedule is built from the steps per epoch before the processes start.
        shuffle_rows: rows shuffled together in a shard (`SHUFFLE_BUFFER_ROWS`).
    """

    def __init__(
        self,
        scan: ParquetScan,
        *,
        task: Task,
        preprocessor: TablePreprocessor,
        target: str,
        valid_rule: ValidRule,
        batch_size: int,
        group: int = 1,
        seed: int = 0,
        num_workers: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle_rows: int = SHUFFLE_BUFFER_ROWS,
    ) -> None:
        super().__init__()
        self.scan, self.task, self.preprocessor, self.target = scan, task, preprocessor, target
        self.valid_rule, self.batch_size, self.group, self.seed = valid_rule, batch_size, group, seed
        self.num_workers, self.shuffle_rows = num_workers, shuffle_rows
        self.world_size = world_size if world_size is not None else _placement(None, None)[1]
        self.rank = rank if rank is None else _placement(rank, self.world_size)[0]
        self.units = scan.units()
        self.train_rows = valid_rule.train_rows_per_unit(scan)
        self.epoch = 0

    @property
    def num_train(self) -> int:
        """Training rows per epoch over all ranks (before the drops described in the module docstring)."""
        return int(self.train_rows.sum())

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` on the next pass (each pass otherwise moves on to the next epoch)."""
        self.epoch = epoch

    def _worker_rows(self) -> list[int]:
        """Rows each worker of this rank yields in one epoch (the same on every rank)."""
        total = self.num_train
        rank_rows = total // self.world_size if self.world_size > 1 else total
        rows = _shares(rank_rows, max(self.num_workers, 1))
        return [n - 1 if n > 1 and n % self.batch_size == 1 else n for n in rows]

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps this rank takes per epoch."""
        return sum(-(-n // self.batch_size) for n in self._worker_rows())

    def __len__(self) -> int:
        """Tensor pairs this rank yields per epoch (Lightning sizes its epoch and progress bar by it)."""
        block = self.batch_size * self.group
        return sum(-(-n // block) for n in self._worker_rows())

    def _pieces(self, epoch: int, shard: int) -> list[_Piece]:
        """The rows of one global shard, in the epoch's order of row groups."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.units))
        workers = max(self.num_workers, 1)
        rank_rows = self.num_train // self.world_size if self.world_size > 1 else self.num_train
        rank, worker = divmod(shard, workers)
        offset = [0, *np.cumsum(_shares(rank_rows, workers)).tolist()]
        begin = rank * rank_rows + offset[worker]
        end = rank * rank_rows + offset[worker + 1]
        pieces, position = [], 0
        for unit in order.tolist():
            rows = int(self.train_rows[unit])
            lo, hi = max(begin, position), min(end, position + rows)
            if lo < hi:
                pieces.append(_Piece(unit, lo - position, hi - position))
            position += rows
            if position >= end:
                break
        return pieces

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        if workers != max(self.num_workers, 1):
            raise ConfigError(
                f"the stream was built for {self.num_workers} DataLoader workers but is read by {workers}; build it "
                "with num_workers= equal to the DataLoader's (use `ParquetStream.loader`)."
            )
        epoch, self.epoch = self.epoch, self.epoch + 1
        shard = self._rank() * workers + worker
        limit = self._worker_rows()[worker]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1009 + shard)
        yield from self._blocks(self._rows(self._pieces(epoch, shard)), limit=limit, generator=generator)

    def _rows(self, pieces: list[_Piece]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Encoded training rows of ``pieces``, a record batch at a time."""
        columns = [*map(str, self.preprocessor.columns), self.target, *self.valid_rule.columns]
        for piece in pieces:
            seen = 0
            for frame in read_unit(self.scan, self.units[piece.unit], columns=list(dict.fromkeys(columns))):
                train = frame[~self.valid_rule.is_valid(frame)]
                lo, hi = max(piece.begin - seen, 0), min(piece.end - seen, len(train))
                seen += len(train)
                if lo < hi:
                    rows = fill_text(train.iloc[lo:hi], self.target)
                    yield self.preprocessor.transform(rows), self.task.encode(rows[self.target])
                if seen >= piece.end:
                    break

    def _blocks(
        self, rows: Iterator[tuple[torch.Tensor, torch.Tensor]], *, limit: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffle ``shuffle_rows`` rows at a time and cut them into blocks of ``batch_size * group`` rows."""
        block = self.batch_size * self.group
        held: list[tuple[torch.Tensor, torch.Tensor]] = []
        count = emitted = 0
        for inputs, targets in rows:
            held.append((inputs, targets))
            count += len(targets)
            if count >= max(self.shuffle_rows, block):
                inputs, targets = _shuffled(held, generator)
                full = (count // block) * block
                for start in range(0, full, block):
                    yield inputs[start : start + block], targets[start : start + block]
                emitted += full
                held, count = [(inputs[full:], targets[full:])], count - full
        if count and emitted < limit:
            inputs, targets = _shuffled(held, generator)
            inputs, targets = inputs[: limit - emitted], targets[: limit - emitted]
            for start in range(0, len(targets), block):
                yield inputs[start : start + block], targets[start : start + block]

    def _rank(self) -> int:
        rank = self.rank if self.rank is not None else _placement(None, self.world_size)[0]
        return _placement(rank, self.world_size)[0]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for DataLoader workers in the training process: fix the rank there, where the group is known."""
        state = dict(self.__dict__)
        if state["rank"] is None:
            state["rank"] = self._rank()
        return state

    def loader(self) -> DataLoader[Any]:
        """A DataLoader reading this stream with its ``num_workers``; workers persist, keeping the epoch count."""
        workers = self.num_workers
        return DataLoader(self, batch_size=None, num_workers=workers, persistent_workers=workers > 0)


def _shuffled(
    held: list[tuple[torch.Tensor, torch.Tensor]], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.cat([pair[0] for pair in held])
    targets = torch.cat([pair[1] for pair in held])
    order = torch.randperm(len(targets), generator=generator)
    return inputs[order], targets[order]


def _placement(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """This process's rank and the number of processes: as given, else torch.distributed, else torchrun's env."""
    import torch.distributed as dist

    connected = dist.is_available() and dist.is_initialized()
    if rank is None or world_size is None:
        if connected:
            found = dist.get_rank(), dist.get_world_size()
        else:
            found = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        rank = found[0] if rank is None else rank
        world_size = found[1] if world_size is None else world_size
    if connected and dist.get_world_size() != world_size:
        raise ConfigError(
            f"the stream was cut for {world_size} processes but {dist.get_world_size()} are training; pass the same "
            "devices and nodes to TrainConfig as to the launcher."
        )
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank={rank} with world_size={world_size}; expected 0 <= rank < world_size.")
    return rank, world_size
