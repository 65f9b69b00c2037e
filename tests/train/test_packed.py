"""Packed cross-fitting (`labelwise.train.packed`): k members in one module are k separate networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labelwise.models.head import Network
from labelwise.models.mlp import TabularMLP
from labelwise.task import Task
from labelwise.train import TrainConfig
from labelwise.train.bagging import fit_bagged
from labelwise.train.batches import InMemoryDataset
from labelwise.train.optim import create_optimizer
from labelwise.train.packed import pack, packable, unpack_member


def _network(seed: int, *, norm: str = "batch") -> Network:
    torch.manual_seed(seed)
    return Network(TabularMLP(6, hidden=(16, 8), norm=norm), num_features=8, head_width=3)  # type: ignore[arg-type]


def _trained_stats(network: Network, seed: int) -> Network:
    """Give BatchNorm running statistics that differ between members (fresh ones are all 0 and 1)."""
    network.train()
    with torch.no_grad():
        network(torch.randn(32, 6, generator=torch.Generator().manual_seed(seed)) * (seed + 1))
    return network.eval()


def test_a_packed_module_computes_each_member_on_its_own_slice() -> None:
    networks = [_trained_stats(_network(seed), seed) for seed in range(4)]
    packed = pack(networks).eval()
    x = torch.randn(10, 4, 6)
    with torch.no_grad():
        out = packed(x)
        for i, network in enumerate(networks):
            torch.testing.assert_close(out[:, i], network(x[:, i]), rtol=1e-5, atol=1e-6)


def test_unpacking_returns_the_packed_weights_and_statistics() -> None:
    networks = [_trained_stats(_network(seed), seed) for seed in range(3)]
    packed = pack(networks)
    packed.train()
    with torch.no_grad():  # change the packed weights and statistics, as training does
        for parameter in packed.parameters():
            parameter.add_(torch.randn_like(parameter))
        packed(torch.randn(16, 3, 6))
    packed.eval()
    x = torch.randn(5, 3, 6)
    fresh = [_network(10 + i).eval() for i in range(3)]
    for i, network in enumerate(fresh):
        unpack_member(packed, i, into=network)
        with torch.no_grad():
            torch.testing.assert_close(network(x[:, i]), packed(x)[:, i], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("network", "example", "expected"),
    [
        (_network(0), torch.zeros(2, 6), True),
        (_network(0, norm="none"), torch.zeros(2, 6), True),
        (_network(0, norm="layer"), torch.zeros(2, 6), False),  # LayerNorm over k members' features would mix them
        (_network(0), {"x": torch.zeros(2, 6)}, False),
        (_network(0), torch.zeros(2, 6, dtype=torch.long), False),
        (nn.Sequential(nn.Conv1d(1, 2, 3)), torch.zeros(2, 1, 6), False),
    ],
    ids=["batchnorm-mlp", "plain-mlp", "layernorm", "dict-input", "int-input", "conv"],
)
def test_packable_admits_only_layers_that_act_on_each_member_alone(
    network: nn.Module, example: object, expected: bool
) -> None:
    assert packable(network, example) is expected


def test_stacked_tensors_are_decayed_like_their_members() -> None:
    packed = pack([_network(seed) for seed in range(3)])
    groups = create_optimizer(packed, lr=1e-3, weight_decay=0.1, stacked=True).param_groups
    decayed = {p.ndim for p in groups[0]["params"]}
    kept = {p.ndim for p in groups[1]["params"]}
    assert decayed == {3} and kept == {2}  # (k, in, out) matrices decay; (k, out) biases and norm gains do not


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_packed_and_one_by_one_members_both_learn_and_keep_their_best_epoch(norm: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    task = Task(kind="multiclass", classes=("a", "b", "c"))
    data = InMemoryDataset(torch.from_numpy(x), torch.from_numpy(y))
    folds = np.arange(300) % 3
    result = fit_bagged(
        lambda: Network(TabularMLP(6, hidden=(32,), norm=norm), num_features=32, head_width=3),  # type: ignore[arg-type]
        task,
        train=data,
        valid=data,
        folds=folds,
        loss=nn.CrossEntropyLoss(),
        config=TrainConfig(epochs=30, seed=0),
    )
    accuracy = (result.valid_outputs.argmax(dim=1) == torch.from_numpy(y)).float().mean().item()
    # Out of fold (each row scored by the member that never trained on it); logistic regression gets 0.803.
    assert accuracy > 0.8
    assert len(result.members) == 3
    for member in result.members:
        assert member["best_epoch"] < member["epochs_run"] <= 30
    best = torch.nn.functional.cross_entropy(result.valid_outputs, torch.from_numpy(y)).item()
    assert best == pytest.approx(result.best_val_loss, rel=1e-5)
