"""Stored uint8 images -> network input, per batch: normalization, and light augmentation when training.

One vectorised call per batch rather than a per-image torchvision pipeline: see `_random_affine`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from labelwise.data.images import ImageSpec
from labelwise.errors import ConfigError

__all__ = ["image_transforms"]


def image_transforms(spec: ImageSpec, *, train: bool, strength: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The transform from stored uint8 pixels to network input, applied to a whole batch at once.

    Args:
        spec: the size, channels and normalization.
        train: add light augmentation, drawn independently for every image: a random affine shift (up to 10 %),
            rotation (up to 10 degrees) and scale (0.9-1.1), each times ``strength``. No horizontal flip: it
            changes the meaning of digits and text.
        strength: scales the augmentation's ranges, in [0, 1]; 0 turns it off. The image recipe
            (`labelwise.models.image_recipe`) sets it from the epochs it trains.

    Returns:
        a callable taking uint8 ``(B, C, H, W)`` (or one image ``(C, H, W)``) and returning float32 of the same
        shape, normalized with ``spec.mean`` and ``spec.std``. Augmentation uses torch's global generator, which
        training seeds.

    Example:
        >>> spec = ImageSpec(size=8, channels=1, mean=(0.5,), std=(0.5,))
        >>> image_transforms(spec, train=False)(torch.full((1, 8, 8), 255, dtype=torch.uint8)).max()
        tensor(1.)
    """
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"augmentation strength={strength!r}; expected a number in [0, 1] (0: no augmentation).")
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)

    def transform(pixels: torch.Tensor) -> torch.Tensor:
        single = pixels.ndim == 3
        batch = pixels.unsqueeze(0) if single else pixels
        batch = (batch.to(torch.float32) / 255.0 - mean) / std
        if train and strength > 0:
            batch = _random_affine(batch, strength)
        return batch[0] if single else batch

    return transform


def _random_affine(batch: torch.Tensor, strength: float) -> torch.Tensor:
    """Shift, rotate and scale each image of a normalized batch independently, in one ``grid_sample``.

    One vectorised call replaces a per-image torchvision transform (~370 us an image on a CPU), which cost
    more than the training step of a small CNN. Uncovered pixels become 0, i.e. the mean colour after
    normalization, so no artificial border appears.
    """
    n = batch.shape[0]
    angle = torch.empty(n).uniform_(-10.0 * strength, 10.0 * strength).deg2rad()
    scale = torch.empty(n).uniform_(1.0 - 0.1 * strength, 1.0 + 0.1 * strength)
    # Grid coordinates span 2, so 0.2 is 10 % of the side.
    shift = torch.empty(n, 2).uniform_(-0.2 * strength, 0.2 * strength)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    return torch.nn.functional.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
