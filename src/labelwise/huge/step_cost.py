"""`step_seconds`: the measured time of one training step of a head loss, on the run's own shapes and machine.

What a loss costs per step depends on the machine (BLAS, threads, cache, accelerator) as much as on its FLOPs,
so `labelwise.huge.choose_head_loss` times the candidates instead of predicting them. A step here is what every
optimizer step pays for the head: the loss's forward and backward on features ``(batch, hidden)`` and a head
``(classes, hidden)`` both requiring grad. The optimizer's update of the head weights is the same whichever loss
made the gradient, so it is left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from labelwise.huge.chunked import chunked_cross_entropy
from labelwise.huge.sampled import Proposal, sampled_bce_loss, sampled_softmax_loss

__all__ = ["step_seconds"]

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _loss(name: str, *, kind: str, num_classes: int, num_sampled: int) -> Loss:
    if name == "full":
        if kind == "multilabel":
            return lambda x, w, b, y: F.binary_cross_entropy_with_logits(x @ w.T + b, y.to_dense())
        return lambda x, w, b, y: F.cross_entropy(x @ w.T + b, y)
    if name == "chunked":
        return lambda x, w, b, y: chunked_cross_entropy(x, w, b, y)
    proposal = Proposal.create("log_uniform", num_classes=num_classes)
    generator = torch.Generator().manual_seed(0)
    sampled = sampled_bce_loss if kind == "multilabel" else sampled_softmax_loss
    return lambda x, w, b, y: sampled(x, w, b, y, proposal=proposal, num_sampled=num_sampled, generator=generator)


def _targets(kind: str, *, num_classes: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Class ids, or for multilabel a sparse (batch, C) 0/1 matrix with two positives per row."""
    if kind != "multilabel":
        return torch.randint(num_classes, (batch_size,), generator=generator)
    rows = torch.arange(batch_size).repeat_interleave(2)
    columns = torch.randint(num_classes, (2 * batch_size,), generator=generator)
    ones = torch.ones(2 * batch_size)
    return torch.sparse_coo_tensor(torch.stack([rows, columns]), ones, (batch_size, num_classes)).coalesce()


def step_seconds(
    name: str, *, kind: str, num_classes: int, batch_size: int, hidden: int, num_sampled: int, repeats: int = 3
) -> float:
    """Seconds of one forward + backward of loss `name` (``full``, ``chunked`` or ``sampled``) on a head of
    `kind` (``multiclass``: softmax cross-entropy; ``multilabel``: per-label BCE).

    The fastest of `repeats` steps after one warm-up step (the minimum is the run least disturbed by other
    processes). Uses torch's current thread setting and the CPU.

    Example:
        >>> step_seconds("full", kind="multiclass", num_classes=1000, batch_size=64, hidden=32, num_sampled=100) > 0
        True
    """
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(batch_size, hidden, generator=generator).requires_grad_()
    weight = (torch.randn(num_classes, hidden, generator=generator) * hidden**-0.5).requires_grad_()
    bias = torch.zeros(num_classes).requires_grad_()
    targets = _targets(kind, num_classes=num_classes, batch_size=batch_size, generator=generator)
    loss_fn = _loss(name, kind=kind, num_classes=num_classes, num_sampled=num_sampled)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss_fn(features, weight, bias, targets).backward()  # type: ignore[no-untyped-call]
        times.append(time.perf_counter() - start)
        features.grad = weight.grad = bias.grad = None
    return min(times[1:])
