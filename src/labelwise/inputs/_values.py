"""What encoding a `Source` gives: the values of every input group, row-aligned, and which rows were readable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from labelwise.errors import DataError

__all__ = ["Encoded", "Rows", "Values"]

# What `Values[rows]` takes: a LongTensor or int array of row positions, a bool mask, or a slice.
Rows = torch.Tensor | np.ndarray | slice


@dataclass(frozen=True)
class Values:
    """Encoded inputs of N rows: one tensor per input group (``"features"``, ``"image"``), all of N rows.

    Indexing takes rows of every group at once, so the training loop, the split and DDP slicing treat values of
    any columns alike.

    Example:
        >>> values = Values({"features": torch.zeros(4, 3), "image": torch.zeros(4, 1, 8, 8, dtype=torch.uint8)})
        >>> len(values[torch.tensor([0, 2])]), values[1:].parts["image"].shape
        (2, torch.Size([3, 1, 8, 8]))
    """

    parts: Mapping[str, torch.Tensor]

    def __post_init__(self) -> None:
        lengths = {key: len(value) for key, value in self.parts.items()}
        if not lengths or len(set(lengths.values())) > 1:
            raise DataError(f"input groups hold different numbers of rows ({lengths}); expected one length for all.")

    def __len__(self) -> int:
        return len(next(iter(self.parts.values())))

    def __getitem__(self, rows: Rows) -> Values:
        if isinstance(rows, np.ndarray):
            rows = torch.from_numpy(rows)  # torch indexes with tensors; a numpy mask would be read as positions
        return Values({key: value[rows] for key, value in self.parts.items()})

    @property
    def only(self) -> torch.Tensor:
        """The tensor of the one group; `DataError` when there are several."""
        if len(self.parts) != 1:
            raise DataError(f"the inputs have {len(self.parts)} groups ({', '.join(self.parts)}); expected one.")
        return next(iter(self.parts.values()))


@dataclass(frozen=True)
class Encoded:
    """The inputs of the rows that could be read: ``values`` (N rows), ``kept`` (bool per source row), and why
    the other rows were skipped (``(path, reason)`` pairs)."""

    values: Values
    kept: np.ndarray
    skipped: list[tuple[str, str]]
