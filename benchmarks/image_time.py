"""Where the time of one image run goes, in one process: imports, decoding, augmentation, steps, validation, ...

Times the stages of ``labelwise.fit`` on an image set (`benchmarks/image_sets.py`) with the defaults: importing
torch and Lightning, reading and decoding the images (prepare), the training steps (forward, backward, optimizer),
the batch transform (normalization and augmentation), validation, the checkpoints written after every epoch, the
rest of the train stage (Lightning's Trainer and loop, the loaders, the best weights restored, the validation
outputs), calibration and decisions (finish), and saving the run. Prints one table of seconds and the load
average around it.

    PYTHONPATH=src python benchmarks/image_time.py digits
    PYTHONPATH=src python benchmarks/image_time.py multidigit64 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

_T0 = time.perf_counter()
import torch  # noqa: E402 - timed

_TORCH = time.perf_counter() - _T0
import lightning.pytorch as pl  # noqa: E402 - timed

_LIGHTNING = time.perf_counter() - _T0 - _TORCH

sys.path.insert(0, str(Path(__file__).parent))
from image_sets import make_set  # noqa: E402

from labelwise.options import FitOptions  # noqa: E402
from labelwise.pipeline.finish import finish  # noqa: E402
from labelwise.pipeline.prepare import prepare  # noqa: E402
from labelwise.pipeline.training import train  # noqa: E402
from labelwise.train.checkpoint_io import AtomicCheckpointIO  # noqa: E402

SECONDS: dict[str, float] = defaultdict(float)


class _Clock(pl.Callback):
    """Seconds of the training steps and of the validation passes."""

    def __init__(self) -> None:
        self.mark = 0.0

    def on_train_batch_start(self, *args: object) -> None:
        self.mark = time.perf_counter()

    def on_train_batch_end(self, *args: object) -> None:
        SECONDS["training steps (forward, backward, AdamW)"] += time.perf_counter() - self.mark

    def on_validation_start(self, *args: object) -> None:
        self.mark = time.perf_counter()

    def on_validation_end(self, *args: object) -> None:
        SECONDS["validation passes"] += time.perf_counter() - self.mark


def _timed(name: str, fn):  # noqa: ANN001, ANN202 - wraps any callable
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECONDS[name] += time.perf_counter() - start

    return wrapper


def _instrument() -> None:
    original_init = pl.Trainer.__init__

    def init(self: pl.Trainer, *args: object, **kwargs: object) -> None:
        kwargs["callbacks"] = [*list(kwargs.get("callbacks") or []), _Clock()]  # type: ignore[call-overload]
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

    pl.Trainer.__init__ = init  # type: ignore[method-assign]
    AtomicCheckpointIO.save_checkpoint = _timed("checkpoints written", AtomicCheckpointIO.save_checkpoint)  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set", help="a name from benchmarks/image_sets.py (digits, multidigit, multidigit64, ...)")
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "labelwise-image-sets"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = make_set(args.set, Path(args.root))
    _instrument()
    load_before = os.getloadavg()
    options = FitOptions.from_keywords(target=info["target"], image_col=info["image_col"], epochs=args.epochs)
    start = time.perf_counter()
    prepared = _timed("prepare (read, decode, split)", prepare)(info["train"], options)
    transform = prepared.train.transform  # type: ignore[attr-defined]
    prepared.train.transform = _timed("batch transform (normalize, augment)", transform)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        trained = _timed("train stage (all of fit_network)", train)(
            prepared, options, run_dir=Path(tmp), resume=False, progress=False
        )
        clf = _timed("finish (calibrate, decide, metrics)", finish)(trained, prepared, options)
        _timed("save the run", clf.save)(Path(tmp) / "run")
    total = time.perf_counter() - start
    metric = clf.evaluate(info["test"], target=info["target"])[str(info["headline"])]
    parts = ("training steps", "batch transform", "validation passes", "checkpoints written")
    inside = sum(seconds for name, seconds in SECONDS.items() if name.startswith(parts))
    rows = {"import torch": _TORCH, "import lightning": _LIGHTNING}
    for name, seconds in SECONDS.items():
        rows[name] = seconds
        if name.startswith("train stage"):
            rows["  the rest (Trainer, loaders, loop, best weights, validation outputs)"] = seconds - inside
    rows["fit total (after imports)"] = total
    width = max(map(len, rows))
    print(f"{args.set}: {trained.result.epochs_run} epochs, test {info['headline']} {metric:.4f}")
    for name, seconds in rows.items():
        print(f"  {name:<{width}}  {seconds:7.2f} s")
    print(f"  load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
