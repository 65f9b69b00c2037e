"""Column encoders, one class per kind of column, and the registry that maps a kind to its class.

An item is a row of columns; each column has a kind and an encoder fitted on the training rows. Two shapes of
encoder exist, told apart by the class attribute ``group``:

* ``group = "features"`` (numeric, categorical, boolean, datetime, and ignored columns that write nothing;
  `labelwise.data.tables`): the column writes ``width`` floats into
  the one feature vector that all such columns share (`FeatureGroup`), which a tabular backbone reads;
* any other group (``"image"``): the column is its own input group with its own tensor, batch transform and
  backbone (`ImageColumn`).

A new kind of column is one encoder class and one `register_column` entry. Every encoder stores itself as JSON
(``to_dict`` with a ``"type"`` key naming its kind; `column_from_dict` reads it back), never pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from labelwise.data._columns import CategoricalColumn, NumericColumn
from labelwise.data._fit_columns import FeatureColumn
from labelwise.data._kind_columns import BooleanColumn, DatetimeColumn, IgnoredColumn
from labelwise.data._text_column import TextColumn
from labelwise.data.images import ImageSpec, infer_image_spec, load_images
from labelwise.data.sources import Source
from labelwise.data.tables import TablePreprocessor
from labelwise.data.transforms import image_transforms
from labelwise.errors import ArtifactError, ConfigError, DataError
from labelwise.models.head import ModelSpec
from labelwise.models.image_recipe import cnn_options

__all__ = [
    "FEATURES",
    "ColumnEncoder",
    "FeatureGroup",
    "GroupValues",
    "ImageColumn",
    "InputGroup",
    "column_from_dict",
    "column_kinds",
    "register_column",
]

FEATURES = "features"  # the group of the columns that share one float feature vector
Transform = Callable[[torch.Tensor], torch.Tensor]


class ColumnEncoder(Protocol):
    """What every column encoder has; see the module docstring for the two shapes."""

    group: ClassVar[str]

    @property
    def name(self) -> Any: ...  # the column (str, or int for a headerless array); None for an image folder

    @property
    def kind(self) -> str: ...  # `labelwise.data.column_kinds.KINDS`, or "image"

    @property
    def why(self) -> str: ...  # how the kind was decided, in a user's words

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GroupValues:
    """One group's encoded tensor over the rows it could read (``kept``, bool per source row) and why not the rest."""

    tensor: torch.Tensor
    kept: np.ndarray
    skipped: list[tuple[str, str]]


class InputGroup(Protocol):
    """One input of the network: encodes a source into one tensor, transforms batches of it, names its backbone."""

    @property
    def key(self) -> str: ...

    def encode(self, source: Source, *, skip_bad: bool) -> GroupValues: ...

    def transform(self, *, train: bool) -> Transform | None: ...

    def model_spec(self, model: str, values: torch.Tensor, *, pretrained: bool) -> ModelSpec: ...


_REGISTRY: dict[str, type[Any]] = {}


def register_column(kind: str, encoder: type[Any]) -> None:
    """Register the encoder class of a kind of column; its ``to_dict`` writes ``{"type": kind, ...}``.

    Raises:
        ConfigError: another class is registered under ``kind``.

    Example:
        >>> register_column("numeric", NumericColumn)  # already registered: a no-op
        >>> "numeric" in column_kinds()
        True
    """
    if _REGISTRY.get(kind, encoder) is not encoder:
        raise ConfigError(f"a column encoder for kind {kind!r} is already registered ({_REGISTRY[kind].__name__}).")
    _REGISTRY[kind] = encoder


def column_kinds() -> list[str]:
    """The registered kinds of column, sorted.

    Example:
        >>> column_kinds()
        ['boolean', 'categorical', 'datetime', 'ignored', 'image', 'numeric', 'text', 'tokenized_text']
    """
    return sorted(_REGISTRY)


def column_from_dict(data: dict[str, Any]) -> Any:
    """The encoder a ``to_dict`` wrote, by its ``"type"``.

    Raises:
        ArtifactError: a kind no encoder is registered for (a run written by a newer labelwise).
    """
    kind = data.get("type")
    if kind not in _REGISTRY:
        raise ArtifactError(
            f"unknown column kind {kind!r} in the stored inputs; expected one of {column_kinds()}. The run was "
            "probably written by a newer labelwise; upgrade labelwise to read it."
        )
    return _REGISTRY[kind].from_dict(data)


@dataclass(frozen=True)
class FeatureGroup:
    """The ``"features"`` group: numeric and categorical columns, one float32 vector ``(N, num_features)``."""

    preprocessor: TablePreprocessor
    key: str = FEATURES

    def encode(self, source: Source, *, skip_bad: bool) -> GroupValues:
        """Transform every row of a table source (a folder of images has no feature columns)."""
        if source.kind == "images" and source.image_col is None:
            raise DataError(
                "this model was trained on a table, but the data given is a folder of images. "
                "Pass a CSV or Parquet file with the training feature columns."
            )
        frame, preprocessor = source.frame, self.preprocessor
        preprocessor.check_columns(frame)
        narrow = preprocessor.narrow_pays(len(frame))  # a large table's binned columns are widened batch by batch
        values = torch.from_numpy(preprocessor.features(frame, num_rows=len(frame), narrow=narrow))
        return GroupValues(values, np.ones(len(values), dtype=bool), [])

    def transform(self, *, train: bool) -> Transform | None:
        """Narrow batches to the wide features (`labelwise.data.narrow`); None: features are ready as stored."""
        return self.preprocessor.widening

    def model_spec(self, model: str, values: torch.Tensor, *, pretrained: bool) -> ModelSpec:
        """A tabular backbone (``"mlp"`` for ``"auto"``) of input width ``num_features``."""
        name = "mlp" if model == "auto" else model
        return ModelSpec(backbone=name, in_features=self.preprocessor.num_features, pretrained=pretrained)


@dataclass(frozen=True)
class ImageColumn:
    """A column of image paths (or the files of an image folder): uint8 ``(N, C, H, W)`` at the spec size.

    Args:
        name: the table's image path column; None for an image folder.
        spec: size, channels and normalization, from a sample of the training images.
        augment: strength of the training augmentation (`labelwise.data.transforms.image_transforms`), set by the
            image recipe; not saved, since predicting never augments.
    """

    group: ClassVar[str] = "image"
    kind: ClassVar[str] = "image"
    why: ClassVar[str] = "image files"
    name: str | None
    spec: ImageSpec
    augment: float = 1.0

    @classmethod
    def fit(cls, source: Source, rows: np.ndarray, *, size: int | None = None) -> ImageColumn:
        """Choose size and channels from a sample of the training images."""
        paths = [source.image_paths[i] for i in rows]
        return cls(source.image_col, infer_image_spec(paths, size=size))

    @property
    def key(self) -> str:
        return self.group

    def encode(self, source: Source, *, skip_bad: bool) -> GroupValues:
        """Decode every image of ``source``; unreadable ones are left out with ``skip_bad``."""
        if source.kind != "images":
            col = f" (`--image-col {self.name}`)" if self.name else ""
            raise DataError(
                f"this model was trained on images{col}, but the data given has no image column. "
                "Pass a folder of images or a table with the image path column used at training."
            )
        loaded = load_images(source.image_paths, self.spec, skip_bad=skip_bad)
        return GroupValues(loaded.pixels, loaded.kept, list(loaded.bad))

    def transform(self, *, train: bool) -> Transform:
        """uint8 pixels -> normalized float (augmented when ``train``)."""
        return image_transforms(self.spec, train=train, strength=self.augment)

    def model_spec(self, model: str, values: torch.Tensor, *, pretrained: bool) -> ModelSpec:
        """An image backbone (``"cnn"`` for ``"auto"``) for the channels and size of ``values``; the compact CNN's
        depth, widths and pooling follow the image size (`labelwise.models.image_recipe.cnn_options`)."""
        name = "cnn" if model == "auto" else model
        channels, size = int(values.shape[1]), int(values.shape[-1])
        options = cnn_options(size) if name == "cnn" else {}
        return ModelSpec(backbone=name, in_chans=channels, image_size=size, pretrained=pretrained, options=options)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {"type": "image", "name": self.name, "spec": self.spec.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageColumn:
        """Inverse of `to_dict`."""
        return cls(data.get("name"), ImageSpec.from_dict(data["spec"]))


def feature_columns(encoders: Sequence[Any]) -> list[FeatureColumn]:
    """The encoders of ``encoders`` that write into the shared feature vector, in order."""
    return [encoder for encoder in encoders if encoder.group == FEATURES]


register_column("numeric", NumericColumn)
register_column("categorical", CategoricalColumn)
register_column("image", ImageColumn)
register_column("boolean", BooleanColumn)
register_column("datetime", DatetimeColumn)
register_column("ignored", IgnoredColumn)
register_column("text", TextColumn)
