"""The image recipe: the compact CNN's depth, widths and pooling, the batch, the epochs and the augmentation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from labelwise.models import create_backbone
from labelwise.models.image_recipe import PASSES, augment_strength, cnn_options, image_recipe

SIZES = range(16, 129)  # from MIN_IMAGE_SIZE up to twice what `infer_image_spec` picks on its own (64)


@pytest.mark.parametrize(
    ("size", "num_train", "widths", "batch_size", "epochs", "augment"),
    [
        pytest.param(16, 100, [24, 48], 32, 100, 1.0, id="16px-tiny"),
        pytest.param(32, 1257, [24, 48, 96], 32, 16, 0.5, id="digits"),
        pytest.param(32, 2400, [24, 48, 96], 32, 10, 0.395, id="multidigit"),
        pytest.param(48, 1600, [24, 48, 96, 192], 32, 13, 0.451, id="48px"),
        pytest.param(64, 2400, [24, 48, 96, 192], 32, 10, 0.395, id="multidigit64"),
        pytest.param(64, 60_000, [24, 48, 96, 192], 128, 10, 0.395, id="64px-large"),
        pytest.param(128, 5000, [24, 48, 96, 192, 192], 64, 10, 0.395, id="128px"),
    ],
)
def test_the_rule_on_known_sets(
    size: int, num_train: int, widths: list[int], batch_size: int, epochs: int, augment: float
) -> None:
    recipe = image_recipe(image_size=size, num_train=num_train)
    assert recipe.network == {"widths": widths, "pool": "avgmax"} == cnn_options(size)
    assert (recipe.batch_size, recipe.epochs, recipe.augment) == (batch_size, epochs, augment)
    assert f"batch {batch_size}, {epochs} epochs, augmentation {augment:g}" in recipe.why


def _receptive_field_and_side(net: nn.Module, size: int) -> tuple[int, int]:
    """The receptive field (px) of one unit of the map that the global pooling reads, from the layers themselves,
    and that map's side, from running the network."""
    field, jump = 1, 1
    for layer in net.modules():
        if isinstance(layer, nn.Conv2d | nn.MaxPool2d):
            kernel = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
            stride = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
            field, jump = field + (kernel - 1) * jump, jump * stride
    seen: list[int] = []
    pooled = [m for m in net.modules() if type(m).__name__ in ("_AvgMaxPool", "AdaptiveAvgPool2d")][0]
    handle = pooled.register_forward_pre_hook(lambda _m, args: seen.append(int(args[0].shape[-1])))
    with torch.no_grad():
        net.eval()(torch.zeros(1, 1, size, size))
    handle.remove()
    return field, seen[0]


@pytest.mark.parametrize("size", [16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128])
def test_the_network_sees_at_least_half_the_image_and_pools_a_small_map(size: int) -> None:
    """Enough halvings that one unit of the last map sees half the side or more, and that map is 2-6 px."""
    net = create_backbone("cnn", in_chans=1, **cnn_options(size))
    field, side = _receptive_field_and_side(net, size)
    assert field >= size / 2, (size, field)
    assert 2 <= side <= 6, (size, side)


def test_the_three_halvings_of_before_saw_a_third_of_a_64px_image() -> None:
    """The reason for the rule (issue 17): the fixed network saw 21 px of 64; the 64 px multidigit canvases hold
    32 px digits."""
    field, side = _receptive_field_and_side(create_backbone("cnn", in_chans=1), 64)
    assert (field, side) == (21, 8)


@pytest.mark.parametrize("num_train", [1, 20, 100, 399, 1257, 2400, 3000, 20_000, 1_000_000])
def test_the_schedule_aims_at_the_passes_within_its_bounds(num_train: int) -> None:
    recipe = image_recipe(image_size=32, num_train=num_train)
    assert math.log2(recipe.batch_size).is_integer() and 32 <= recipe.batch_size <= 128
    assert 10 <= recipe.epochs <= 100
    passes = recipe.epochs * num_train
    # At least PASSES image passes unless the epochs hit their cap, and not one epoch more than needed above 10.
    assert passes >= PASSES or recipe.epochs == 100
    assert recipe.epochs == 10 or (recipe.epochs - 1) * num_train < PASSES


def test_larger_sets_take_larger_batches_and_fewer_epochs() -> None:
    recipes = [image_recipe(image_size=32, num_train=n) for n in (300, 1257, 2400, 8000, 30_000)]
    assert [r.batch_size for r in recipes] == sorted(r.batch_size for r in recipes)
    assert [r.epochs for r in recipes] == sorted((r.epochs for r in recipes), reverse=True)


def test_augmentation_grows_with_the_epochs_up_to_full_strength() -> None:
    strengths = [augment_strength(epochs) for epochs in range(0, 200)]
    assert strengths == sorted(strengths) and strengths[0] == 0.0
    assert augment_strength(64) == augment_strength(500) == 1.0 and augment_strength(16) == 0.5


def test_given_batch_and_epochs_are_kept_and_the_augmentation_follows_the_epochs() -> None:
    recipe = image_recipe(image_size=32, num_train=1257, batch_size=64, epochs=64)
    assert (recipe.batch_size, recipe.epochs, recipe.augment) == (64, 64, 1.0)
    assert recipe.why.endswith("(batch 64, epochs 64 given)")
    assert recipe.network == image_recipe(image_size=32, num_train=1257).network
