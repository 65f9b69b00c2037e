"""How a `Source` becomes the tensor a network reads, fitted on training rows and stored in the artifact.

Tables go through a `TablePreprocessor` (standardize, encode, impute); images are decoded once to uint8
at the `ImageSpec` size and normalized per batch. Both are described by JSON (`to_dict`), never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from labelwise.data.images import ImageSpec, image_transforms, infer_image_spec, load_images
from labelwise.data.sources import Source
from labelwise.data.tables import TablePreprocessor
from labelwise.errors import ArtifactError, DataError

__all__ = ["ImageInputs", "Inputs", "TableInputs", "inputs_from_dict"]


@dataclass(frozen=True)
class Encoded:
    """Model inputs of the rows that could be read: ``values`` (N, ...) and ``kept`` (bool per source row)."""

    values: torch.Tensor
    kept: np.ndarray
    skipped: list[tuple[str, str]]


@dataclass(frozen=True)
class TableInputs:
    """Feature columns -> float32 ``(N, num_features)``."""

    preprocessor: TablePreprocessor

    @classmethod
    def fit(cls, source: Source, rows: np.ndarray) -> TableInputs:
        """Fit the preprocessing on the training ``rows`` of a table source."""
        train_frame = source.frame.iloc[rows]
        return cls(TablePreprocessor.fit(train_frame, columns=source.feature_columns))

    @property
    def num_features(self) -> int:
        return self.preprocessor.num_features

    def encode(self, source: Source, *, skip_bad: bool = False) -> Encoded:
        """Transform every row of ``source``."""
        if source.kind != "table":
            raise DataError(
                "this model was trained on a table, but the data given is a folder of images. "
                "Pass a CSV or Parquet file with the training feature columns."
            )
        values = self.preprocessor.transform(source.frame)
        return Encoded(values, np.ones(len(values), dtype=bool), [])

    def batch_transform(self, values: torch.Tensor) -> torch.Tensor:
        """Features are ready as stored."""
        return values

    def to_dict(self) -> dict[str, Any]:
        return {"type": "table", **self.preprocessor.to_dict()}


@dataclass(frozen=True)
class ImageInputs:
    """Image files -> uint8 ``(N, C, H, W)`` at the spec size; normalized per batch."""

    spec: ImageSpec
    image_col: str | None

    @classmethod
    def fit(cls, source: Source, rows: np.ndarray, *, size: int | None = None) -> ImageInputs:
        """Choose size and channels from a sample of the training images."""
        paths = [source.image_paths[i] for i in rows]
        return cls(infer_image_spec(paths, size=size), source.image_col)

    @property
    def num_features(self) -> int | None:
        return None

    def encode(self, source: Source, *, skip_bad: bool = False) -> Encoded:
        """Decode every image of ``source``."""
        if source.kind != "images":
            col = f" (`--image-col {self.image_col}`)" if self.image_col else ""
            raise DataError(
                f"this model was trained on images{col}, but the data given has no image column. "
                "Pass a folder of images or a table with the image path column used at training."
            )
        loaded = load_images(source.image_paths, self.spec, skip_bad=skip_bad)
        return Encoded(loaded.pixels, loaded.kept, list(loaded.bad))

    def batch_transform(self, values: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> normalized float, for evaluation (no augmentation)."""
        return image_transforms(self.spec, train=False)(values)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "images", "image_col": self.image_col, "spec": self.spec.to_dict()}


Inputs = TableInputs | ImageInputs


def inputs_from_dict(data: dict[str, Any]) -> Inputs:
    """Rebuild what `to_dict` wrote."""
    kind = data.get("type")
    if kind == "table":
        fields = {k: v for k, v in data.items() if k != "type"}
        return TableInputs(TablePreprocessor.from_dict(fields))
    if kind == "images":
        return ImageInputs(ImageSpec.from_dict(data["spec"]), data.get("image_col"))
    raise ArtifactError(f"unknown preprocessing type {kind!r} in labelwise.json; expected 'table' or 'images'.")
