"""Training progress as the reader of the output can see it: a live bar on a terminal, one line per epoch elsewhere.

A progress bar redraws itself with carriage returns; written to a file or a CI log, every redraw becomes a line of
its own. Off a terminal, `EpochLines` writes one plain line per epoch instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

__all__ = ["EpochLines", "progress_callback"]


class EpochLines(Callback):
    """``epoch 3/40  train_loss 0.4121  val_loss 0.3987  (1.2 s)`` on ``stream`` after each validated epoch."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        shown = "  ".join(
            f"{name} {float(metrics[name]):.4f}" for name in ("train_loss", "val_loss") if name in metrics
        )
        took = time.perf_counter() - self._started
        line = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}  ({took:.1f} s)"
        print(line, file=self.stream or sys.stderr, flush=True)


def progress_callback(*, steps: int, stream: Any = None) -> Callback:
    """A live bar when ``stream`` (stderr by default) is a terminal, else `EpochLines`."""
    out = stream or sys.stderr
    if getattr(out, "isatty", lambda: False)():
        # ~10 refreshes per epoch: redrawing the bar after every small step costs as much as the step.
        return TQDMProgressBar(refresh_rate=max(1, steps // 10))
    return EpochLines(stream)
