"""Lightning's side of the checkpoints (`labelwise.train.checkpoints`): the atomic writer and the batch order kept in
them. Apart so that what reads a run folder without training in Lightning does not import it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "BatchOrder"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` that writes ``path.tmp``, flushes it to disk, then renames it over ``path``.

    ``os.replace`` is atomic on POSIX and Windows: readers (and a resumed run) see the old file or the new one.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (local paths only, which is all labelwise writes)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class BatchOrder(Callback):
    """Keep the training sampler's random generator in the checkpoint, so a resumed run draws the batches an
    uninterrupted run would have drawn in the epochs it has left.

    Args:
        generator: the generator the training loader's sampler permutes with (`EpochBatches.generator`).
    """

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        """The generator's state after the epochs run so far."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the generator where the checkpointed run left it."""
        self.generator.set_state(state_dict["generator"])
