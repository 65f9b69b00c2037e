"""Cross-fitting's k members trained side by side in one module, each on its own rows.

Training k small table networks one after another pays PyTorch's per-operation cost k times: a step of the
default table MLP is ~0.2 ms of arithmetic and ~0.8 ms of dispatch, autograd and optimizer bookkeeping. TabM's
ensemble layers (`tabm.LinearEnsemble`, `tabm.BatchNorm1dEnsemble`; Gorishniy et al. 2024, "TabM") hold the k
copies of each layer in one tensor and apply copy i to the i-th slice of a ``(batch, k, features)`` input, so one
step updates every member. Each member still reads only its own training rows (its slice of the batch) and is
early-stopped on its own held-out fold; the packed module is unpacked into k ordinary networks afterwards, so the
run, its ONNX graph and its predictions are those of k separately trained networks.

Packing applies to networks made only of linear layers, BatchNorm1d, element-wise activations and dropout, fed one
float tensor (`packable`); anything else is trained one member at a time (`labelwise.train.bagging`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import tabm
import torch
from torch import nn
from torch.utils.data import Dataset

from labelwise.models.head import Network
from labelwise.models.mlp import TabularMLP
from labelwise.train._members import CrossFit, Member, check_finite, epoch_batches, num_batches, one_thread_for_small
from labelwise.train.config import TrainConfig
from labelwise.train.optim import create_optimizer, create_scheduler, preferred
from labelwise.train.result import StopReason

__all__ = ["fit_packed", "pack", "packable", "unpack_member"]

_VALID_CHUNK = 4096  # rows per forward pass when scoring held-out rows

_ELEMENTWISE = (nn.Dropout, nn.GELU, nn.ReLU, nn.SiLU, nn.Identity)
_CONTAINERS = (Network, TabularMLP, nn.Sequential)


def packable(network: nn.Module, example: object) -> bool:
    """Whether ``network`` can train packed: linear, BatchNorm1d and element-wise layers in our containers, whose
    forward passes apply them in order, on an input that is one float tensor."""
    if not isinstance(example, torch.Tensor) or not example.is_floating_point():
        return False
    for module in network.modules():
        if isinstance(module, _CONTAINERS):
            continue
        if type(module) not in (nn.Linear, nn.BatchNorm1d, *_ELEMENTWISE):
            return False
    return True


def pack(networks: Sequence[nn.Module]) -> nn.Module:
    """One module holding ``networks`` (identical architectures) side by side, their weights copied in.

    Its input is ``(batch, k, in_features)``, slice i for member i; its output ``(batch, k, head_width)``.
    """
    k = len(networks)
    packed = copy.deepcopy(networks[0])
    tabm.ensemble_linear_layers_(packed, k=k)
    tabm.ensemble_batchnorm1d_layers_(packed, k=k)
    with torch.no_grad():
        for i, network in enumerate(networks):
            _copy(network, packed, i, into_packed=True)
    return packed


def unpack_member(packed: nn.Module, i: int, into: nn.Module) -> None:
    """Copy member i's weights and BatchNorm statistics out of ``packed`` into the ordinary network ``into``."""
    with torch.no_grad():
        _copy(into, packed, i, into_packed=False)


def _copy(network: nn.Module, packed: nn.Module, i: int, *, into_packed: bool) -> None:
    plain = dict(network.named_modules())
    for name, module in packed.named_modules():
        if isinstance(module, tabm.LinearEnsemble):
            pairs = _linear_pairs(module, plain[name], i)
        elif isinstance(module, tabm.BatchNorm1dEnsemble):
            pairs = _batchnorm_pairs(module, plain[name], i)
        else:
            continue
        for ours, theirs in pairs:
            (ours if into_packed else theirs).copy_(theirs if into_packed else ours)


def _linear_pairs(module: tabm.LinearEnsemble, linear: nn.Module, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(slice of the packed tensor, the plain layer's tensor) for each weight of a linear layer."""
    assert isinstance(linear, nn.Linear)
    pairs = [(module.weight[i], linear.weight.T)]
    if module.bias is not None:
        pairs.append((module.bias[i], linear.bias))
    return pairs


def _batchnorm_pairs(
    module: tabm.BatchNorm1dEnsemble, norm: nn.Module, i: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same for a BatchNorm1d: its running statistics (member-major in the packed one) and its affine part."""
    assert isinstance(norm, nn.BatchNorm1d)
    width = norm.num_features
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    if norm.running_mean is not None and norm.running_var is not None:
        impl = module.impl
        assert impl.running_mean is not None and impl.running_var is not None
        pairs += [(impl.running_mean.view(-1, width)[i], norm.running_mean)]
        pairs += [(impl.running_var.view(-1, width)[i], norm.running_var)]
    if module.affine is not None and norm.weight is not None:
        pairs += [(module.affine.weight[i], norm.weight), (module.affine.bias[i], norm.bias)]
    return pairs


# -- training ----------------------------------------------------------------------------------------
def fit_packed(networks: list[nn.Module], loss: nn.Module, job: CrossFit) -> list[Member]:
    """Train ``networks[j]`` on the rows outside fold j, all in one packed module; leave each holding the weights
    of its best epoch on fold j, and return the members (as `labelwise.train.bagging` trains them one by one).

    Every member takes the same number of steps a epoch, enough for the largest training set; a smaller one
    goes round its own rows again. A member whose held-out loss has not improved for ``config.patience`` epochs
    stops keeping weights (it trains on with the others, unused) and the loop ends when all have stopped.
    """
    k, train, valid, folds, config, device = len(networks), job.train, job.valid, job.folds, job.config, job.device
    packed = pack(networks).to(device)
    rows = [torch.from_numpy(np.flatnonzero(folds != j)) for j in range(k)]
    held = [torch.from_numpy(np.flatnonzero(folds == j)) for j in range(k)]
    size = max(len(r) for r in rows)
    batch_size = config.resolve_batch_size(size)
    epochs = config.resolve_epochs(num_batches(size, batch_size))
    lr = config.resolve_lr(preferred(networks[0], "preferred_lr"))
    weight_decay = config.resolve_weight_decay(preferred(networks[0], "preferred_weight_decay"))
    optimizer = create_optimizer(packed, lr=lr, weight_decay=weight_decay, stacked=True)
    scheduler = create_scheduler(optimizer, lr=lr, total_steps=epochs * num_batches(size, batch_size))
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    tracks = [_Track(valid.targets[h].to(device)) for h in held]  # type: ignore[attr-defined]
    with one_thread_for_small(packed, device):
        for epoch in range(epochs):
            order = torch.stack([r[_cycle(len(r), size, generator)] for r in rows], dim=1)
            train_losses = _epoch(packed, loss, train, order, optimizer, scheduler, batch_size, generator, device)
            logits = _held_out_logits(packed, valid, held, device)
            lr_now = float(scheduler.get_last_lr()[0])
            for j, track in enumerate(tracks):
                if track.record(epoch, logits[j], loss, train_loss=train_losses[j], lr=lr_now, config=config):
                    unpack_member(packed, j, networks[j])
            if all(track.stopped for track in tracks):
                break
            if job.past_deadline():
                break
    last: StopReason = "time_budget" if job.past_deadline() else "max_epochs"
    return [track.member(networks[j], default_stop=last) for j, track in enumerate(tracks)]


class _Track:
    """One member's curve, best epoch and held-out logits while the packed module trains."""

    def __init__(self, targets: torch.Tensor) -> None:
        self.targets = targets
        self.history: list[dict[str, float]] = []
        self.best: tuple[float, int, torch.Tensor] | None = None
        self.stopped: StopReason | None = None

    def record(
        self, epoch: int, logits: torch.Tensor, loss: nn.Module, *, train_loss: float, lr: float, config: TrainConfig
    ) -> bool:
        """Add the epoch to the curve of a member still running; True when it is its best so far (its weights are
        to be kept)."""
        if self.stopped is not None:
            return False
        val_loss = float(loss(logits, self.targets))
        check_finite(epoch, train_loss=train_loss, val_loss=val_loss, lr=lr)
        self.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr})
        if self.best is None or val_loss < self.best[0]:
            self.best = (val_loss, epoch, logits.float().cpu())
            return True
        if epoch - self.best[1] >= config.patience:
            self.stopped = "early_stopping"
        return False

    def member(self, network: nn.Module, *, default_stop: StopReason) -> Member:
        assert self.best is not None  # at least one epoch runs: resolve_epochs returns >= 1
        return Member(network.state_dict(), self.best[2], self.history, self.best[1], self.stopped or default_stop)


def _cycle(num_rows: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``length`` positions into ``num_rows`` rows: shuffled passes over all of them, the last one cut short."""
    passes = -(-length // num_rows)
    return torch.cat([torch.randperm(num_rows, generator=generator) for _ in range(passes)])[:length]


def _epoch(
    packed: nn.Module,
    loss: nn.Module,
    train: Dataset[Any],
    order: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
) -> list[float]:
    """One epoch over ``order`` ``(size, k)`` (row j of member i at ``order[:, i]``); each member's mean loss."""
    packed.train()
    size, k = order.shape
    totals = torch.zeros(k, device=device)
    for positions in epoch_batches(size, batch_size, generator=generator):
        inputs, targets = train[order[positions].flatten()]
        inputs = inputs.view(len(positions), k, *inputs.shape[1:]).to(device)
        targets = targets.view(len(positions), k, *targets.shape[1:]).to(device)
        logits = packed(inputs)
        losses = torch.stack([loss(logits[:, i], targets[:, i]) for i in range(k)])
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        totals += losses.detach() * len(positions)
    return [float(value) for value in totals / size]


def _held_out_logits(
    packed: nn.Module, valid: Dataset[Any], held: list[torch.Tensor], device: torch.device
) -> list[torch.Tensor]:
    """Each member's logits on its own held-out fold, the folds padded to one length to run as one batch."""
    packed.eval()
    k, longest = len(held), max(len(h) for h in held)
    index = torch.stack([h[torch.arange(longest) % len(h)] for h in held], dim=1)
    with torch.inference_mode():
        parts = []
        for chunk in torch.split(index, max(1, _VALID_CHUNK // k)):
            inputs, _ = valid[chunk.flatten()]
            parts.append(packed(inputs.view(len(chunk), k, *inputs.shape[1:]).to(device)).float())
    logits = torch.cat(parts)
    return [logits[: len(h), j].clone() for j, h in enumerate(held)]
