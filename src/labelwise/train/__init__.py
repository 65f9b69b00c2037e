"""Training: options (`TrainConfig`), the LightningModule, and `fit_network`."""

from labelwise.train.batches import InMemoryDataset as InMemoryDataset
from labelwise.train.batches import TensorPair as TensorPair
from labelwise.train.batches import predict_logits as predict_logits
from labelwise.train.batches import scale_pixels as scale_pixels
from labelwise.train.config import TrainConfig as TrainConfig
from labelwise.train.module import LabelwiseModule as LabelwiseModule
from labelwise.train.trainer import TrainResult as TrainResult
from labelwise.train.trainer import fit_network as fit_network

__all__ = [
    "InMemoryDataset",
    "LabelwiseModule",
    "TensorPair",
    "TrainConfig",
    "TrainResult",
    "fit_network",
    "predict_logits",
    "scale_pixels",
]
