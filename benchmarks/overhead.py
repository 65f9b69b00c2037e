"""Seconds per epoch of `fit_network` against a bare PyTorch loop doing the same work, in one process.

Both train the same network (identical initial weights), on the same in-memory tensors, with the same batch
size, thread count, optimizer (AdamW, decay on weights only) and one-cycle schedule, and both run a full
validation pass after every epoch (fit_network needs it for early stopping; the bare loop computes the same
validation loss). Runs alternate (bare, fit_network, bare, ...) so that load from other processes hits both
alike; seconds per epoch are each run's total time divided by its epochs, so fit_network's setup,
checkpointing and final best-weight restore are included. Printed: the minimum and the median over repeats.

    python benchmarks/overhead.py                      # both workloads, 2 threads, wall clock
    python benchmarks/overhead.py --threads 1 --clock cpu   # on a machine shared with other jobs
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labelwise.losses import loss_for
from labelwise.models import build_network, create_backbone
from labelwise.task import Task
from labelwise.train import TrainConfig, fit_network
from labelwise.train.batches import EpochBatches, scale_pixels
from labelwise.train.module import create_optimizer, create_scheduler


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
        "cnn", task, lambda: build_network(create_backbone("cnn", in_chans=1), task),
        (images[:1257], targets[:1257]), (images[1257:], targets[1257:]), 64,
    )


def _mlp_workload() -> Workload:
    # A table of 20000 x 30 standardized features, binary target, batch 256 (the auto batch size).
    gen = torch.Generator().manual_seed(0)
    task = Task(kind="binary", classes=("no", "yes"))
    x = torch.randn(24000, 30, generator=gen)
    y = (x[:, :3].sum(dim=1) + 0.5 * torch.randn(24000, generator=gen) > 0).float()
    return Workload(
        "mlp", task, lambda: build_network(create_backbone("mlp", in_features=30), task),
        (x[:20000], y[:20000]), (x[20000:], y[20000:]), 256,
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
    config = TrainConfig(epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=work.batch_size, patience=epochs + 1)
    start = _clock()
    with tempfile.TemporaryDirectory() as run_dir:
        fit_network(network, work.task, train=work.train, valid=work.valid, loss=loss_for(work.task),
                    config=config, run_dir=run_dir, progress_bar=False)
    return _clock() - start


def measure(work: Workload, *, epochs: int, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds per epoch of the bare loop and of fit_network, one value per repeat."""
    torch.manual_seed(0)
    initial = work.make_network()
    bare, ours = [], []
    for _ in range(repeats):
        bare.append(bare_loop(copy.deepcopy(initial), work, epochs=epochs, lr=3e-3, weight_decay=0.05) / epochs)
        ours.append(labelwise_loop(copy.deepcopy(initial), work, epochs=epochs, lr=3e-3, weight_decay=0.05) / epochs)
    return bare, ours


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
        print(f"{name}: {len(work.train[0])} rows, batch {work.batch_size}, {steps} steps/epoch")
        # The minimum is the run least disturbed by other processes; the median shows the spread.
        for label, pick in (("min", min), ("median", statistics.median)):
            b, o = pick(bare), pick(ours)
            print(f"  {label:6s} bare {b:.3f} s/epoch | fit_network {o:.3f} s/epoch | ratio {o / b:.3f}")


if __name__ == "__main__":
    main()
