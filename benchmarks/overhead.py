"""Seconds per epoch of `fit_network` against a bare PyTorch loop doing the same work, in one process.

Both train the same network (identical initial weights), on the same in-memory tensors, with the same batch
size, thread count, optimizer (AdamW, decay on weights only) and one-cycle schedule, and both run a full
validation pass after every epoch (fit_network needs it for early stopping; the bare loop computes the same
validation loss). Runs alternate (bare, fit_network, bare, ...) so that load from other processes hits both
alike, and each loop runs for 1 and for 1 + --epochs epochs: seconds per epoch is the slope between the two
(the minimum over repeats of each, the runs least disturbed by other processes), and what remains of the
1-epoch run is fixed cost per call (fit_network: Trainer setup, checkpoint restore, the final validation pass).
Also printed: the ratio of whole 10-epoch runs, fixed costs included. The bare loop runs without the
NVML-based CUDA check that importing Lightning switches on, as a plain PyTorch process would.

    python benchmarks/overhead.py                      # both workloads, 2 threads, wall clock
    python benchmarks/overhead.py --threads 1 --clock cpu   # on a machine shared with other jobs
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from labelwise.errors import TrainingWarning
from labelwise.losses import loss_for
from labelwise.models import build_network, create_backbone
from labelwise.task import Task
from labelwise.train import TrainConfig, fit_network
from labelwise.train.batches import EpochBatches, scale_pixels
from labelwise.train.optim import create_optimizer, create_scheduler

# Wall clock by default; --clock cpu measures this process's CPU time instead, which other processes on a
# shared machine disturb far less (use it with --threads 1, where CPU time is the time spent computing).
_clock = time.perf_counter


@dataclass
class Workload:
    """One benchmark case: a network factory and train/valid tensors."""

    name: str
    task: Task
    make_network: Callable[[], nn.Module]
    train: tuple[torch.Tensor, torch.Tensor]
    valid: tuple[torch.Tensor, torch.Tensor]
    batch_size: int


def _cnn_workload() -> Workload:
    # The digits setting: 1257 grayscale 32x32 uint8 images, 10 classes, batch 64 (the auto batch size).
    gen = torch.Generator().manual_seed(0)
    task = Task(kind="multiclass", classes=tuple(range(10)))
    images = torch.randint(0, 256, (1527, 1, 32, 32), generator=gen, dtype=torch.uint8)
    targets = torch.randint(0, 10, (1527,), generator=gen)
    return Workload(
        "cnn",
        task,
        lambda: build_network(create_backbone("cnn", in_chans=1), task),
        (images[:1257], targets[:1257]),
        (images[1257:], targets[1257:]),
        64,
    )


def _mlp_workload() -> Workload:
    # A table of 20000 x 30 standardized features, binary target, batch 256 (the auto batch size).
    gen = torch.Generator().manual_seed(0)
    task = Task(kind="binary", classes=("no", "yes"))
    x = torch.randn(24000, 30, generator=gen)
    y = (x[:, :3].sum(dim=1) + 0.5 * torch.randn(24000, generator=gen) > 0).float()
    return Workload(
        "mlp",
        task,
        lambda: build_network(create_backbone("mlp", in_features=30), task),
        (x[:20000], y[:20000]),
        (x[20000:], y[20000:]),
        256,
    )


def bare_loop(network: nn.Module, work: Workload, *, epochs: int, lr: float, weight_decay: float) -> float:
    """Train like fit_network with nothing but torch; returns wall seconds."""
    # A plain PyTorch process does not have the NVML-based CUDA check that importing Lightning switches on.
    nvml_check = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    try:
        return _bare_loop(network, work, epochs=epochs, lr=lr, weight_decay=weight_decay)
    finally:
        if nvml_check is not None:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = nvml_check


def _bare_loop(network: nn.Module, work: Workload, *, epochs: int, lr: float, weight_decay: float) -> float:
    start = _clock()
    loss_fn = loss_for(work.task)
    (x, y), (vx, vy) = work.train, work.valid
    sampler = EpochBatches(len(x), batch_size=work.batch_size, shuffle=True, seed=0)
    optimizer = create_optimizer(network, lr=lr, weight_decay=weight_decay)
    scheduler = create_scheduler(optimizer, lr=lr, total_steps=epochs * len(sampler))
    for _ in range(epochs):
        network.train()
        for index in sampler:
            inputs = scale_pixels(x[index]) if x.dtype == torch.uint8 else x[index]
            loss = loss_fn(network(inputs), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        network.eval()
        with torch.no_grad():
            total = 0.0
            for index in torch.arange(len(vx)).split(max(work.batch_size, 256)):
                inputs = scale_pixels(vx[index]) if vx.dtype == torch.uint8 else vx[index]
                total += float(loss_fn(network(inputs), vy[index])) * len(index)
            _ = total / len(vx)
    return _clock() - start


def labelwise_loop(network: nn.Module, work: Workload, *, epochs: int, lr: float, weight_decay: float) -> float:
    """fit_network on the same work (no early stop within `epochs`: patience > epochs); returns wall seconds."""
    # The guards stay on (their cost is part of fit_network's); their warnings about the 1-epoch runs are not news.
    warnings.filterwarnings("ignore", category=TrainingWarning)
    config = TrainConfig(
        epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=work.batch_size, patience=epochs + 1
    )
    start = _clock()
    with tempfile.TemporaryDirectory() as run_dir:
        fit_network(
            network,
            work.task,
            train=work.train,
            valid=work.valid,
            loss=loss_for(work.task),
            config=config,
            run_dir=run_dir,
            progress_bar=False,
        )
    return _clock() - start


@dataclass
class Timing:
    """Seconds per epoch (the slope between a short and a long run) and fixed seconds per call."""

    per_epoch: float
    fixed: float


def measure(work: Workload, *, epochs: int, repeats: int) -> tuple[Timing, Timing]:
    """Time the bare loop and fit_network on 1 and on 1 + ``epochs`` epochs; the minimum over repeats of each.

    Seconds per epoch = (T(1 + epochs) - T(1)) / epochs, so setup (Trainer, checkpoint restore, the final
    validation pass) is reported apart, as fixed seconds per call.
    """
    torch.manual_seed(0)
    initial = work.make_network()
    runs: dict[tuple[str, int], list[float]] = {}
    for _ in range(repeats):
        for count in (1, 1 + epochs):
            for name, loop in (("bare", bare_loop), ("ours", labelwise_loop)):
                seconds = loop(copy.deepcopy(initial), work, epochs=count, lr=3e-3, weight_decay=0.05)
                runs.setdefault((name, count), []).append(seconds)
    timings = []
    for name in ("bare", "ours"):
        short, long = min(runs[name, 1]), min(runs[name, 1 + epochs])
        per_epoch = (long - short) / epochs
        timings.append(Timing(per_epoch=per_epoch, fixed=short - per_epoch))
    return timings[0], timings[1]


def main() -> None:
    """Run the chosen workloads and print seconds per epoch and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["cnn", "mlp", "all"], default="all")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    makers = {"cnn": _cnn_workload, "mlp": _mlp_workload}
    names = list(makers) if args.workload == "all" else [args.workload]
    print(f"threads={args.threads} epochs={args.epochs} repeats={args.repeats} clock={args.clock}")
    for name in names:
        work = makers[name]()
        bare, ours = measure(work, epochs=args.epochs, repeats=args.repeats)
        steps = -(-len(work.train[0]) // work.batch_size)
        ten = (ours.fixed + 10 * ours.per_epoch) / (bare.fixed + 10 * bare.per_epoch)
        print(
            f"{name}: {len(work.train[0])} rows, batch {work.batch_size}, {steps} steps/epoch | "
            f"bare {bare.per_epoch:.3f} s/epoch + {bare.fixed:.3f} s | "
            f"fit_network {ours.per_epoch:.3f} s/epoch + {ours.fixed:.3f} s | "
            f"ratio per epoch {ours.per_epoch / bare.per_epoch:.3f} | ratio of 10-epoch runs {ten:.3f}"
        )


if __name__ == "__main__":
    main()
