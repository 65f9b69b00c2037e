"""The context a training run executes in: quiet Lightning, Ctrl+C that stops after the step, and errors that
say where the last good checkpoints are. Used by `labelwise.train.trainer.fit_network`."""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L

from labelwise.errors import TrainingError
from labelwise.train.checkpoints import checkpoint_dir, last_checkpoint

__all__ = ["naming_kept_checkpoints", "quiet_lightning", "stop_on_sigint"]

_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
# Lightning advice that does not apply to in-memory tensors, and notices about reusing a run directory.
_EXPECTED_WARNINGS = (
    r".*does not have many workers.*",
    r".*is smaller than the logging interval.*",
    r".*exists and is not empty.*",
    # Lightning 2.6's pytree helper against torch >= 2.10 (LeafSpec deprecation); harmless.
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    # A ParquetStream's __len__ is exact: it shards by worker itself (labelwise.data.streaming).
    r".*Your `IterableDataset` has `__len__` defined.*",
    # Under DDP the module all-reduces the loss sums itself (labelwise.train.distributed): logged values agree.
    r".*when logging on epoch level in distributed setting.*",
)


@contextmanager
def naming_kept_checkpoints(run_dir: Path) -> Iterator[None]:
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
def quiet_lightning() -> Iterator[None]:
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
def stop_on_sigint(trainer: L.Trainer) -> Iterator[list[bool]]:
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
