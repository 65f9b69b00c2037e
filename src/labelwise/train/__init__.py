"""Training: options (`TrainConfig`), the LightningModule, and `fit_network`.

Names load on first use (PEP 562): the CLI reads `labelwise.train.config` to build its help without importing
Lightning and torch behind the training loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelwise._lazy import lazy_exports

if TYPE_CHECKING:
    from labelwise.train.batches import InMemoryDataset as InMemoryDataset
    from labelwise.train.batches import TensorPair as TensorPair
    from labelwise.train.batches import predict_logits as predict_logits
    from labelwise.train.batches import scale_pixels as scale_pixels
    from labelwise.train.config import TrainConfig as TrainConfig
    from labelwise.train.module import LabelwiseModule as LabelwiseModule
    from labelwise.train.result import TrainResult as TrainResult
    from labelwise.train.trainer import fit_network as fit_network

_EXPORTS = {
    "InMemoryDataset": "labelwise.train.batches",
    "LabelwiseModule": "labelwise.train.module",
    "TensorPair": "labelwise.train.batches",
    "TrainConfig": "labelwise.train.config",
    "TrainResult": "labelwise.train.result",
    "fit_network": "labelwise.train.trainer",
    "predict_logits": "labelwise.train.batches",
    "scale_pixels": "labelwise.train.batches",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
