"""What training one cross-fitting member and training k of them packed (`labelwise.train.packed`) share: the
member's record, its epoch's batches, the finite-loss check, the thread count, and its progress line."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from labelwise.errors import TrainingError
from labelwise.train.config import TrainConfig
from labelwise.train.result import StopReason

__all__ = [
    "CrossFit",
    "Member",
    "check_finite",
    "device_for",
    "epoch_batches",
    "num_batches",
    "one_thread_for_small",
    "report",
]

_SMALL_NETWORK = 1_000_000  # parameters below which a CPU step runs on one thread (see `one_thread_for_small`)


@dataclass(frozen=True)
class CrossFit:
    """What every member is trained from: all rows as training and as evaluation read them, each row's fold, the
    config, the device, and the time budget's deadline (`time.monotonic`), if any."""

    train: Dataset[Any]
    valid: Dataset[Any]
    folds: np.ndarray
    config: TrainConfig
    device: torch.device
    deadline: float | None

    def past_deadline(self) -> bool:
        """Whether the time budget is spent."""
        return self.deadline is not None and time.monotonic() > self.deadline


@dataclass(frozen=True)
class Member:
    """One trained member: its best weights, its logits on the fold it never saw, and its curve."""

    state: dict[str, torch.Tensor]
    held_out: torch.Tensor
    history: list[dict[str, float]]
    best_epoch: int
    stopped: StopReason


def check_finite(epoch: int, *, train_loss: float, val_loss: float, lr: float) -> None:
    """Stop a diverged member with what to change."""
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        raise TrainingError(
            f"the loss became non-finite in epoch {epoch} (train_loss={train_loss}, val_loss={val_loss}): training "
            f"diverged. Try a lower learning rate (lr={lr:g} now; e.g. lr={lr / 10:g}), and check that the inputs "
            "hold no NaN/inf."
        )


def epoch_batches(num_rows: int, batch_size: int, *, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of index batches; a last batch of one row joins the one before (BatchNorm needs two)."""
    batches = list(torch.split(torch.randperm(num_rows, generator=generator), batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def num_batches(num_rows: int, batch_size: int) -> int:
    """How many batches `epoch_batches` makes of ``num_rows``."""
    full, rest = divmod(num_rows, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


@contextmanager
def one_thread_for_small(network: nn.Module, device: torch.device) -> Iterator[None]:
    """Train a small network on the CPU with one intra-op thread.

    The operations of a table network's step (a 64 x 256 matrix product) are too small to split between threads:
    with 2 threads, a step of the default MLP on 2 cores took 10.4 ms while another process used a core, against
    0.78 ms on one thread.
    """
    small = sum(p.numel() for p in network.parameters()) < _SMALL_NETWORK
    if device.type != "cpu" or not small:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def device_for(config: TrainConfig) -> torch.device:
    """The GPU when the config allows one and there is one, else the CPU."""
    wants_gpu = config.accelerator in ("auto", "gpu", "cuda")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def report(member: Member, *, fold: int, num_folds: int, seconds: float | None) -> None:
    """The member's progress line on stderr; ``seconds`` None when the members trained together."""
    best = member.history[member.best_epoch]
    took = "" if seconds is None else f"  ({seconds:.1f} s)"
    print(
        f"member {fold + 1}/{num_folds}  {len(member.history)} epochs, best {member.best_epoch + 1}  "
        f"held-out loss {best['val_loss']:.4f}{took}",
        file=sys.stderr,
        flush=True,
    )
