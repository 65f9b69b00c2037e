"""`Inputs`: the column encoders of a run, grouped into the network's inputs, and everything done with them.

Numeric and categorical columns share one float feature vector (the ``"features"`` group, read by the tabular
backbone); an image column is its own group (read by the image backbone). With one group the values, the dataset,
the batch the network takes and the `ModelSpec` are exactly those of a plain table or image run; with several, a
``"concat"`` backbone (`labelwise.models.combiner`) runs each group's backbone and joins their features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from labelwise.data._fit_columns import fit_columns
from labelwise.data._text_column import TEXT
from labelwise.data.images import ImageSpec
from labelwise.data.sources import Source
from labelwise.data.tables import TablePreprocessor
from labelwise.errors import ArtifactError, ConfigError, DataError
from labelwise.inputs._values import Encoded, Values
from labelwise.inputs.columns import (
    FEATURES,
    ColumnEncoder,
    FeatureGroup,
    ImageColumn,
    InputGroup,
    column_from_dict,
    feature_columns,
)
from labelwise.inputs.text import TextGroup, text_columns
from labelwise.inputs.tokenized import TextTokenizing, TokenizedGroup, tokenized_columns
from labelwise.models.combiner import COMBINER, FUSION_HIDDEN
from labelwise.models.head import ModelSpec
from labelwise.train.batches import GroupedDataset, InMemoryDataset

if TYPE_CHECKING:
    from labelwise.data.splits import Split

__all__ = ["Inputs", "NetworkInput", "drop_unreadable", "inputs_from_dict"]

# What the network takes: one tensor for one group (as before groups existed), else one tensor per group.
NetworkInput = torch.Tensor | dict[str, torch.Tensor]


@dataclass(frozen=True)
class Inputs:
    """The fitted column encoders of a run, in column order, and the input groups they form.

    Example:
        >>> import pandas as pd
        >>> from labelwise.data.sources import source_from_frame
        >>> source = source_from_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"], "y": [0, 1, 0]}))
        >>> inputs = Inputs.fit(source, np.arange(3))
        >>> [group.key for group in inputs.groups], inputs.encode(source).values.only.shape
        (['features'], torch.Size([3, 6]))
    """

    columns: tuple[ColumnEncoder, ...]
    groups: tuple[InputGroup, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.columns:
            raise ConfigError("Inputs got no columns; expected at least one fitted column encoder.")
        table = TablePreprocessor(specs=tuple(feature_columns(self.columns)))
        groups: list[InputGroup] = [FeatureGroup(table)] if table.num_features else []
        texts, tokenized = text_columns(self.columns), tokenized_columns(self.columns)
        groups += [TextGroup(texts)] if texts else []
        groups += [TokenizedGroup(tokenized)] if tokenized else []
        groups += [column for column in self.columns if column.group not in (FEATURES, TEXT)]  # type: ignore[misc]
        if not groups:
            raise DataError(
                "every feature column is left out, so there is nothing to learn from: "
                + "; ".join(f"{spec.name!r}: {spec.why}" for spec in table.specs)
                + f". Pass column_kinds to read a column another way, e.g. --column-kinds {table.specs[0].name}="
                "categorical, or --text-cols NAME for a column of words."
            )
        keys = [group.key for group in groups]
        if len(set(keys)) < len(keys):
            raise ConfigError(
                f"the inputs hold several columns of one group ({keys}); expected at most one column of each kind "
                "other than numeric and categorical. Keep one image column."
            )
        object.__setattr__(self, "groups", tuple(groups))

    @classmethod
    def fit(
        cls,
        source: Source,
        train_rows: np.ndarray,
        *,
        image_size: int | None = None,
        column_kinds: Mapping[str, str] | None = None,
        text_cols: Sequence[str] | None = None,
        text_model: str | None = None,
    ) -> Inputs:
        """Fit one encoder per input column of ``source`` on its ``train_rows``.

        Args:
            source: the training data: feature columns, an image column, or both.
            train_rows: positions of the training rows.
            image_size: side of the images; by default inferred from a sample of them.
            column_kinds: column -> kind, for feature columns not to be read as their values suggest.
            text_cols: the only columns to read as free text (None: their values decide).
            text_model: a Hugging Face model whose tokenizer reads the text columns
                (`labelwise.models.hf_text.text_model_for`); None: TF-IDF.

        Raises:
            DataError: as `TablePreprocessor.fit` and `infer_image_spec`.
            ConfigError: text columns, and a ``text_model`` that is not on this machine.
        """
        columns: list[ColumnEncoder] = []
        if source.feature_columns:
            frame = source.frame.iloc[train_rows]
            fit_text = TextTokenizing(text_model) if text_model else None
            columns += fit_columns(
                frame, columns=source.feature_columns, kinds=column_kinds, text_cols=text_cols, fit_text=fit_text
            )
        if source.kind == "images":
            columns.append(ImageColumn.fit(source, train_rows, size=image_size))
        return cls(tuple(columns))

    @property
    def table(self) -> TablePreprocessor | None:
        """The numeric and categorical columns, or None when there are none."""
        return next((g.preprocessor for g in self.groups if isinstance(g, FeatureGroup)), None)

    @property
    def row_columns(self) -> tuple[Any, ...]:
        """The encoders of the table's columns, in order: those of the feature vector (the left-out ones too, with
        width 0) and the text columns; empty for a folder of images."""
        return tuple(column for column in self.columns if column.group in (FEATURES, TEXT))

    @property
    def kinds(self) -> dict[str, dict[str, str]]:
        """Each input column's kind and why: ``{"age": {"kind": "numeric", "why": "numbers, 40 distinct values"}}``
        (a folder of images is ``"<image files>"``)."""
        return {
            "<image files>" if column.name is None else str(column.name): {
                "kind": column.kind,
                "why": getattr(column, "why", ""),
            }
            for column in self.columns
        }

    @property
    def num_features(self) -> int | None:
        """Width of the ``"features"`` group (numeric and categorical columns), None without one."""
        return self.table.num_features if self.table is not None else None

    @property
    def image(self) -> ImageColumn | None:
        """The image column, or None when there is none."""
        return next((g for g in self.groups if isinstance(g, ImageColumn)), None)

    @property
    def image_col(self) -> str | None:
        """The table column of image paths, None without one (or for images read from a folder)."""
        return self.image.name if self.image is not None else None

    def encode(self, source: Source, *, skip_bad: bool = False) -> Encoded:
        """Encode every row of ``source``; rows any group cannot read (unreadable images) are left out.

        Raises:
            DataError: the source lacks a column the inputs need, or holds values they cannot encode.
        """
        encoded = [group.encode(source, skip_bad=skip_bad) for group in self.groups]
        kept = np.logical_and.reduce([part.kept for part in encoded])
        parts = {
            group.key: part.tensor if kept.all() else part.tensor[torch.from_numpy(kept[part.kept])]
            for group, part in zip(self.groups, encoded, strict=True)
        }
        return Encoded(Values(parts), kept, [item for part in encoded for item in part.skipped])

    def transform(self, *, train: bool) -> Callable[[Values], NetworkInput]:
        """Values of a batch -> what the network takes; ``train`` adds each group's augmentation."""
        transforms = {group.key: group.transform(train=train) for group in self.groups}

        def apply(values: Values) -> NetworkInput:
            out = {key: t(values.parts[key]) if t else values.parts[key] for key, t in transforms.items()}
            return next(iter(out.values())) if len(out) == 1 else out

        return apply

    def batch_transform(self, values: Values) -> NetworkInput:
        """What the network takes at evaluation for a batch of ``values`` (no augmentation)."""
        return self.transform(train=False)(values)

    def dataset(self, values: Values, targets: torch.Tensor, *, train: bool) -> Dataset[Any]:
        """A dataset of ``(network input, target)`` batches; augmentation when ``train``.

        One group gives the `InMemoryDataset` plain table and image runs always had; several a `GroupedDataset`.
        """
        if len(self.groups) == 1:
            return InMemoryDataset(values.only, targets, transform=self.groups[0].transform(train=train))
        return GroupedDataset(values, targets, transform=self.transform(train=train))

    def model_spec(self, model: str, values: Values, *, pretrained: bool) -> ModelSpec:
        """The architecture for these inputs: one group's backbone, or the ``"concat"`` combiner of all groups.

        Args:
            model: ``"auto"`` (``"mlp"`` for features, ``"cnn"`` for images) or a backbone name; with several
                groups it names the Hugging Face model of tokenized text columns, else the image backbone, and the
                other groups go through their ``"auto"`` backbones.
            values: encoded values (their shapes size the backbones).
            pretrained: start the image backbone or the Hugging Face model from pretrained weights.
        """
        keys = [group.key for group in self.groups]
        bag = next((group for group in self.groups if isinstance(group, TextGroup)), None)
        if model == "auto" and bag is not None and set(keys) <= {TEXT, FEATURES}:
            return bag.linear_spec(features=values.parts.get(FEATURES))
        if len(self.groups) == 1:
            return self.groups[0].model_spec(model, values.only, pretrained=pretrained)
        # `model` names the Hugging Face model of tokenized text, else the image backbone; only they have weights.
        named = TokenizedGroup if any(isinstance(g, TokenizedGroup) for g in self.groups) else ImageColumn
        parts = {
            group.key: group.model_spec(
                model if isinstance(group, named) else "auto",
                values.parts[group.key],
                pretrained=pretrained and isinstance(group, named),
            ).to_dict()
            for group in self.groups
        }
        return ModelSpec(
            backbone=COMBINER, pretrained=pretrained, options={"parts": parts, "hidden": list(FUSION_HIDDEN)}
        )

    def with_augment(self, strength: float) -> Inputs:
        """These inputs with the image columns' training augmentation at ``strength`` (`ImageColumn.augment`)."""
        columns = (replace(c, augment=strength) if isinstance(c, ImageColumn) else c for c in self.columns)
        return Inputs(tuple(columns))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `inputs_from_dict` inverts it."""
        return {"type": "columns", "columns": [column.to_dict() for column in self.columns]}


def inputs_from_dict(data: dict[str, Any]) -> Inputs:
    """Rebuild what `Inputs.to_dict` wrote, or the ``"table"`` / ``"images"`` preprocessing of earlier runs.

    Raises:
        ArtifactError: an unknown ``"type"`` or column kind.
    """
    kind = data.get("type")
    if kind == "columns":
        return Inputs(tuple(column_from_dict(column) for column in data["columns"]))
    if kind == "table":
        return Inputs(TablePreprocessor.from_dict({"columns": data["columns"]}).specs)
    if kind == "images":
        return Inputs((ImageColumn(data.get("image_col"), ImageSpec.from_dict(data["spec"])),))
    raise ArtifactError(
        f"unknown preprocessing type {kind!r} in labelwise.json; expected 'columns' (or 'table' / 'images' from "
        "earlier runs). The run was probably written by a newer labelwise; upgrade labelwise to read it."
    )


def drop_unreadable(split: Split, kept: np.ndarray) -> Split:
    """``split`` over the rows `Inputs.encode` kept: positions renumbered, unreadable rows left out."""
    if kept.all():
        return split
    # Positions shift once unreadable rows are removed: map old row index -> new position.
    new_position = np.cumsum(kept) - 1
    from labelwise.data.splits import Split  # deferred: its splitters (scikit-learn) are for training only

    return Split(new_position[split.train[kept[split.train]]], new_position[split.valid[kept[split.valid]]], split.how)
