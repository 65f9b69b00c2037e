"""The image recipe: how the compact CNN and its schedule scale with the images (issue 17).

One rule, from the image side and the number of training items, measured on six image sets of all three kinds made
without downloads (``benchmarks/image_defaults.py``: digits at 32 px, the multidigit canvases at 32 and 64 px, noisy
digits at 48 px, RGB shapes at 64 and 96 px):

- **Depth**: as many halvings (the stride-2 stem, then a conv + 2x2 max pool per further stage) as leave a map of
  about 4x4, ``round(log2(side / 4))`` and at least 2: 3 at 32 px, 4 at 48 and 64 px. The receptive field then spans
  more than half the image. At 64 px the earlier fixed three halvings saw 21 px of 64, and the 64 px multidigit
  canvases (2x2 digits of 32 px) reached test micro-F1 0.852 in 20 epochs (unaugmented); four halvings 0.990.
- **Widths**: 24 channels at the stem, doubling per stage, at most 192.
- **Pooling**: global average and maximum side by side (``pool="avgmax"``): the maximum keeps the evidence of one
  small object that the average over the map dilutes. On the 32 px multidigit canvases (20 epochs, augmented) test
  micro-F1 rose from 0.914 to 0.980; on the other sets it was as good or better.
- **Batch**: the power of two nearest to ``num_train / 100``, within [32, 128]: small sets take small batches, so
  that an epoch holds many steps. The 32 px multidigit canvases reached micro-F1 0.985 in 10 epochs of batch 32, and
  0.969 in 10 epochs of batch 64.
- **Epochs**: enough for `PASSES` image passes (epochs x items), within [10, 100]: 16 epochs on digits' 1,257
  training images, 10 on 2,400. Early stopping may end sooner.
- **Learning rate**: the one-cycle peak `labelwise.train.config.AUTO_LR` (3e-3) at every batch size; twice that was
  no better on digits.
- **Augmentation**: the light random affine of `labelwise.data.transforms` (shift up to 10 %, rotation up to 10
  degrees, scale 0.9-1.1) at a strength of ``sqrt(epochs / 64)``, at most 1 (`augment_strength`): an image seen more
  often needs views that differ more, and a short schedule needs its epochs to fit the images. Full strength went
  with the earlier ~50-epoch schedules; at this recipe's 10-16 epochs it cost accuracy everywhere it was measured
  (seed 0): digits 0.989 at full strength, 0.996 at 0.5 (16 epochs); multidigit micro-F1 0.985 at full, 0.991 at
  0.4 (10 epochs); noisy digits 0.972 at full, 0.976 at 0.5, 0.958 without (13 epochs).

The task's kind is not an input of the rule: sets of all three kinds were measured and none called for another
choice (the maximum pooling helps multilabel canvases most and cost the single-label sets nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["PASSES", "ImageRecipe", "augment_strength", "cnn_options", "image_recipe"]

# Image passes (epochs x training items) the schedule aims at: 16 epochs on 1,257 digits, ~7 s on 2 CPU cores.
PASSES = 20_000
_MIN_EPOCHS, _MAX_EPOCHS = 10, 100
_ITEMS_PER_BATCH = 100  # batch ~ num_train / 100
_FULL_AUGMENT_EPOCHS = 64  # epochs from which the augmentation has its full strength
_MIN_BATCH, _MAX_BATCH = 32, 128
_STEM_WIDTH, _MAX_WIDTH = 24, 192
_FINAL_MAP = 4  # side of the last feature map the halvings aim at
_MIN_HALVINGS = 2


@dataclass(frozen=True, kw_only=True)
class ImageRecipe:
    """What the rule chose for one image run (see the module docstring), and why.

    Args:
        network: options of the ``"cnn"`` backbone (``widths``, ``pool``).
        batch_size: rows per optimizer step.
        epochs: most epochs (early stopping may end sooner).
        augment: strength of the training augmentation in [0, 1] (`labelwise.data.transforms.image_transforms`).
        why: one line naming the inputs of the rule and what it chose.
    """

    network: dict[str, Any]
    batch_size: int
    epochs: int
    augment: float
    why: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (what the run records)."""
        return {
            "network": self.network,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "augment": self.augment,
            "why": self.why,
        }


def cnn_options(image_size: int) -> dict[str, Any]:
    """The ``"cnn"`` backbone's options for square images of side ``image_size``: its depth, widths and pooling.

    Example:
        >>> cnn_options(32), cnn_options(64)["widths"]
        ({'widths': [24, 48, 96], 'pool': 'avgmax'}, [24, 48, 96, 192])
    """
    halvings = max(_MIN_HALVINGS, round(math.log2(max(image_size, 1) / _FINAL_MAP)))
    widths = [min(_STEM_WIDTH * 2**stage, _MAX_WIDTH) for stage in range(halvings)]
    return {"widths": widths, "pool": "avgmax"}


def augment_strength(epochs: int) -> float:
    """The augmentation's strength for a schedule of ``epochs``: ``sqrt(epochs / 64)``, at most 1.

    An image seen more often needs views that differ more; a short schedule needs the epochs to fit the images.

    Example:
        >>> augment_strength(16), augment_strength(100)
        (0.5, 1.0)
    """
    return round(min(1.0, math.sqrt(max(epochs, 0) / _FULL_AUGMENT_EPOCHS)), 3)


def image_recipe(
    *, image_size: int, num_train: int, batch_size: int | None = None, epochs: int | None = None
) -> ImageRecipe:
    r"""The network and schedule for ``num_train`` training images of side ``image_size`` (see the module docstring).

    Args:
        image_size: side of the (square) images the network reads.
        num_train: training items.
        batch_size: keep this batch size (the options named it); None: the rule's.
        epochs: keep these epochs (the options named them); None: the rule's. The augmentation follows the epochs.

    Example:
        >>> recipe = image_recipe(image_size=32, num_train=1257)
        >>> recipe.batch_size, recipe.epochs, recipe.augment, recipe.network["widths"]
        (32, 16, 0.5, [24, 48, 96])
        >>> print(image_recipe(image_size=64, num_train=2400).why.replace("; ", "\n"))
        2,400 training images of 64 px: 4 halvings to a 4x4 map, widths 24-48-96-192, average+max pooling
        batch 32, 10 epochs, augmentation 0.395
    """
    network = cnn_options(image_size)
    given = [f"{name} {value}" for name, value in (("batch", batch_size), ("epochs", epochs)) if value is not None]
    if batch_size is None:
        target = max(num_train, 1) / _ITEMS_PER_BATCH
        batch_size = min(max(2 ** round(math.log2(max(target, 1.0))), _MIN_BATCH), _MAX_BATCH)
    if epochs is None:
        epochs = min(max(math.ceil(PASSES / max(num_train, 1)), _MIN_EPOCHS), _MAX_EPOCHS)
    augment = augment_strength(epochs)
    halvings = len(network["widths"])
    side = math.ceil(image_size / 2**halvings)
    why = (
        f"{num_train:,} training images of {image_size} px: {halvings} halvings to a {side}x{side} map, widths "
        f"{'-'.join(map(str, network['widths']))}, average+max pooling; batch {batch_size}, {epochs} epochs, "
        f"augmentation {augment:g}" + (f" ({', '.join(given)} given)" if given else "")
    )
    return ImageRecipe(network=network, batch_size=batch_size, epochs=epochs, augment=augment, why=why)
