"""The compact image backbone: a small CNN that trains in seconds on a CPU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from labelwise.errors import ConfigError
from labelwise.models.registry import register_backbone

__all__ = ["POOLS", "CompactCNN", "MIN_IMAGE_SIZE", "cnn"]

# Three halvings (stem stride, two pools) leave 2x2 maps at 16 px; below that the pools run out of pixels.
MIN_IMAGE_SIZE = 16
# Global pooling of the last feature map: its mean, or its mean and its maximum side by side.
POOLS = ("avg", "avgmax")


def _conv_bn_relu(in_chans: int, out_chans: int, *, stride: int = 1) -> list[nn.Module]:
    # No conv bias: BatchNorm's shift makes it redundant.
    return [
        nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(inplace=True),
    ]


class _AvgMaxPool(nn.Module):
    """``(N, C, H, W)`` -> ``(N, 2C)``: each channel's mean and maximum over the map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class CompactCNN(nn.Module):
    """Stride-2 stem, then conv-BN-ReLU + 2x2 max pool per width, then global pooling.

    The stride-2 stem skips full-resolution feature maps, which cost most of a small CNN's CPU time
    (memory-bound BN/ReLU/pool) and add little for the small images this model is for. Each width after the
    first halves the map again, so ``len(widths)`` halvings in all: `labelwise.models.image_recipe` picks as many
    as leave a ~4x4 map, which makes the receptive field cover the image. At 32x32 one training step on 64
    images takes ~20 ms on 2 CPU cores.

    Args:
        in_chans: input channels, 1 (grayscale) or 3 (RGB).
        widths: channels of the stem and of each following stage.
        dropout: dropout on the pooled features.
        pool: ``"avg"`` (global average, ``num_features`` = the last width) or ``"avgmax"`` (average and maximum
            side by side, twice as many features): the maximum keeps a small object's evidence that the average
            over a large map dilutes.
    """

    def __init__(
        self, in_chans: int, *, widths: Sequence[int] = (24, 48, 96), dropout: float = 0.0, pool: str = "avg"
    ) -> None:
        super().__init__()
        if in_chans not in (1, 3):
            raise ConfigError(f"the 'cnn' backbone takes in_chans 1 (grayscale) or 3 (RGB); got {in_chans!r}.")
        if len(widths) < 1 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ConfigError(f"widths={tuple(widths)!r}; expected one or more positive ints, e.g. (24, 48, 96).")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout={dropout!r}; expected a probability in [0, 1).")
        if pool not in POOLS:
            raise ConfigError(f"pool={pool!r}; expected one of {', '.join(repr(p) for p in POOLS)}.")
        layers = _conv_bn_relu(in_chans, widths[0], stride=2)
        for before, after in zip(widths[:-1], widths[1:], strict=False):
            # ceil_mode keeps odd-sized maps (e.g. 5x5 -> 3x3) instead of dropping the last row and column.
            layers += [*_conv_bn_relu(before, after), nn.MaxPool2d(2, ceil_mode=True)]
        pooled = [_AvgMaxPool()] if pool == "avgmax" else [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        layers += [*pooled, nn.Dropout(dropout)]
        self.features = nn.Sequential(*layers)
        self.in_chans = in_chans
        self.num_features = int(widths[-1]) * (2 if pool == "avgmax" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, num_features)`` of images ``x: (N, in_chans, H, W)`` float, H and W >= 16."""
        return self.features(x)  # type: ignore[no-any-return]


@register_backbone("cnn")
def cnn(
    *,
    in_features: int | None,
    in_chans: int | None,
    pretrained: bool,
    widths: Sequence[int] = (24, 48, 96),
    dropout: float = 0.0,
    pool: str = "avg",
) -> CompactCNN:
    """Build the compact CNN; see `CompactCNN` for the options.

    The defaults are the network of runs saved before the image recipe (`labelwise.models.image_recipe`), whose
    ``labelwise.json`` names no options; new runs name every option.

    Example:
        >>> from labelwise.models import create_backbone
        >>> create_backbone("cnn", in_chans=1)(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 96])
    """
    if in_features is not None:
        raise ConfigError(f"in_features={in_features!r} was given to the image backbone 'cnn'; for tables use 'mlp'.")
    if pretrained:
        raise ConfigError("the 'cnn' backbone has no pretrained weights; pass pretrained=False, or a timm model name.")
    return CompactCNN(3 if in_chans is None else in_chans, widths=tuple(widths), dropout=dropout, pool=pool)
