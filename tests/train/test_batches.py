"""Whole-batch lookups on in-memory tensors, the epoch sampler, and batched inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from labelwise.errors import DataError
from labelwise.train import InMemoryDataset, predict_logits, scale_pixels
from labelwise.train.batches import EpochBatches, make_loader, steps_per_epoch


def test_lookup_returns_rows_of_inputs_and_targets() -> None:
    x, y = torch.randn(10, 3), torch.arange(10)
    index = torch.tensor([7, 2, 2])
    inputs, targets = InMemoryDataset(x, y)[index]
    torch.testing.assert_close(inputs, x[[7, 2, 2]], rtol=0, atol=0)
    torch.testing.assert_close(targets, y[[7, 2, 2]], rtol=0, atol=0)


def test_uint8_images_are_scaled_to_minus_one_one() -> None:
    pixels = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8)
    inputs, _ = InMemoryDataset(pixels, torch.zeros(4))[torch.arange(4)]
    torch.testing.assert_close(inputs, pixels.float() / 127.5 - 1.0, rtol=0, atol=1e-6)
    assert scale_pixels(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]


def test_transform_is_applied_once_per_batch() -> None:
    seen: list[tuple[int, ...]] = []

    def transform(batch: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(batch.shape))
        return batch.float() + 1000

    pixels = torch.zeros(6, 3, 4, 4, dtype=torch.uint8)
    inputs, _ = InMemoryDataset(pixels, torch.zeros(6), transform=transform)[torch.tensor([0, 3])]
    assert seen == [(2, 3, 4, 4)] and inputs.shape == (2, 3, 4, 4) and float(inputs.min()) == 1000


def test_misaligned_targets() -> None:
    with pytest.raises(DataError, match=r"inputs hold 5 rows but targets hold 4; they must be aligned"):
        InMemoryDataset(torch.zeros(5, 2), torch.zeros(4))


@pytest.mark.parametrize(
    ("num_samples", "batch_size", "group"), [(10, 3, 1), (10, 3, 2), (9, 4, 1), (8, 8, 3), (1, 4, 1)]
)
def test_an_epoch_visits_every_row_once(num_samples: int, batch_size: int, group: int) -> None:
    sampler = EpochBatches(num_samples, batch_size=batch_size, shuffle=True, seed=1, group=group)
    indices = torch.cat(list(sampler))
    dropped = num_samples - len(indices)
    # Only a final batch of one row is dropped, and only when there is another batch.
    assert dropped == (1 if num_samples % batch_size == 1 and num_samples > batch_size else 0)
    assert len(set(indices.tolist())) == len(indices)
    assert len(list(sampler)) == len(sampler) and sampler.num_batches == -(-len(indices) // batch_size)


def test_in_order_keeps_every_row() -> None:
    assert torch.cat(list(EpochBatches(9, batch_size=4, shuffle=False))).tolist() == list(range(9))


def test_permutations_depend_only_on_the_seed_and_change_each_epoch() -> None:
    first = EpochBatches(50, batch_size=8, shuffle=True, seed=3)
    second = EpochBatches(50, batch_size=8, shuffle=True, seed=3)
    epoch_a, epoch_b = torch.cat(list(first)), torch.cat(list(first))
    torch.testing.assert_close(epoch_a, torch.cat(list(second)), rtol=0, atol=0)
    assert not torch.equal(epoch_a, epoch_b)
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(3))  # the reference the parity test uses
    torch.testing.assert_close(epoch_a, expected, rtol=0, atol=0)


def test_loader_over_any_dataset_collates_items() -> None:
    data = TensorDataset(torch.randn(9, 2), torch.arange(9))
    loader = make_loader(data, batch_size=4, shuffle=True, seed=0)
    sizes = [len(y) for _, y in loader]
    assert sizes == [4, 4] and steps_per_epoch(loader) == 2  # the final batch of one is dropped


def test_grouped_loader_counts_steps_not_fetches() -> None:
    loader = make_loader(
        InMemoryDataset(torch.randn(100, 2), torch.zeros(100)), batch_size=10, shuffle=True, seed=0, group=4
    )
    assert len(loader) == 3 and steps_per_epoch(loader) == 10
    assert [len(y) for _, y in loader] == [40, 40, 20]


def test_predict_logits_matches_a_plain_forward_and_restores_mode() -> None:
    net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2)).train()
    x = torch.randn(300, 3)
    logits = predict_logits(net, x, batch_size=64)
    assert net.training
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(logits, net(x), rtol=1e-5, atol=1e-6)  # batched vs whole: float rounding only


def test_predict_logits_on_a_dataset_with_a_transform() -> None:
    pixels = torch.randint(0, 256, (5, 1, 4, 4), dtype=torch.uint8)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    logits = predict_logits(net, pixels, transform=lambda image: image.float() / 255)
    with torch.no_grad():
        torch.testing.assert_close(logits, net(pixels.float() / 255), rtol=1e-5, atol=1e-6)


def test_predict_logits_needs_rows() -> None:
    with pytest.raises(DataError, match=r"predict_logits got no rows; pass at least one"):
        predict_logits(nn.Linear(3, 1), torch.zeros(0, 3))
