"""Wide table features kept narrow in memory, and widened one batch at a time.

`TablePreprocessor.features` writes a numeric column with a piecewise-linear encoding as 1 + B features (its
scaled value and one per bin; B is up to 16) and the network reads them all. Held for every row, that is 17x the
column: a 200,000-row table of 64 numeric columns takes 870 MB as float32. Its narrow form keeps the two numbers
the features are computed from, the scaled value and the value itself (NaN where missing: the fill value is not
always a float32), and `Widening` computes the bins of a batch
when it is read (an (N, 2) gather and clamp per column, negligible next to the network's step). A table goes
narrow when its wide features would take more than `NARROW_ABOVE_BYTES`; smaller ones are stored wide as before.

The bins are computed in float64 like `labelwise.data._columns.piecewise_linear`, from the value as stored in
float32. For values float32 holds exactly (float32 columns, integers below 2^24) the widened batch equals the
wide features bit for bit; otherwise the value's rounding to float32 moves a bin by at most ~1e-7 of its width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labelwise.data._columns import NumericColumn

if TYPE_CHECKING:
    import torch

__all__ = ["NARROW_ABOVE_BYTES", "Widening", "binned", "narrow_width", "write_narrow"]

# Below this the wide features cost less memory than a copy of a small table's frame, and widening per batch would
# only add a step to every batch of the small tables that are cross-fitted.
NARROW_ABOVE_BYTES = 64 * 2**20


def binned(spec: Any) -> bool:
    """Whether `spec` is a numeric column with a piecewise-linear encoding (the columns stored narrow)."""
    return isinstance(spec, NumericColumn) and spec.edges is not None


def narrow_width(spec: Any) -> int:
    """Features of `spec` in the narrow form: scaled value, value, missing indicator; the wide width otherwise."""
    return 2 + spec.indicator if binned(spec) else int(spec.width)


def write_narrow(spec: Any, series: pd.Series, out: np.ndarray) -> str | None:
    """Write a column's narrow ``(N, narrow_width)`` features; a description of unreadable cells instead."""
    if not binned(spec):
        return spec.write(series, out)  # type: ignore[no-any-return]
    column: NumericColumn = spec
    filled, missing, problem = column.filled(series)
    if problem:
        return problem
    out[:, 0] = column.scale(filled)
    out[:, 1] = np.where(missing, np.nan, filled)  # filled when widened: the fill value may not be a float32
    if column.indicator:
        out[:, 2] = missing
    return None


@dataclass(frozen=True, eq=False)
class Widening:
    """``(B, narrow) -> (B, wide)``: the batch's features as `TablePreprocessor.features` writes them.

    A batch that is already wide (``B, wide``) passes unchanged, so every reader of a table's group takes the same
    transform, whether its rows were stored narrow or not.
    """

    narrow: int
    wide: int
    copy_from: np.ndarray  # narrow column of each wide column that is copied (scaled values, one-hots, indicators)
    copy_to: np.ndarray
    bin_from: np.ndarray  # narrow column holding the value of each bin's column
    bin_to: np.ndarray
    left: np.ndarray  # float64 left edge and width of each bin, and the value that fills a missing cell
    width: np.ndarray
    fill: np.ndarray

    @classmethod
    def of(cls, specs: Sequence[Any]) -> Widening | None:
        """The widening of a preprocessor's column encoders; None when none is binned (narrow = wide)."""
        if not any(binned(spec) for spec in specs):
            return None
        parts: dict[str, list[Any]] = {key: [] for key in ("copy_from", "copy_to", "bin_from", "bin_to", "edges")}
        narrow = wide = 0
        for spec in specs:
            if binned(spec):
                edges = np.asarray(spec.edges, dtype=np.float64)
                bins = len(edges) - 1
                kept = [(narrow, wide)] + ([(narrow + 2, wide + 1 + bins)] if spec.indicator else [])
                parts["bin_from"].append(np.full(bins, narrow + 1))
                parts["bin_to"].append(np.arange(wide + 1, wide + 1 + bins))
                parts["edges"].append(np.stack([edges[:-1], np.diff(edges), np.full(bins, spec.fill)], axis=1))
            else:
                kept = [(narrow + j, wide + j) for j in range(int(spec.width))]
            parts["copy_from"].append(np.array([k[0] for k in kept], dtype=np.int64))
            parts["copy_to"].append(np.array([k[1] for k in kept], dtype=np.int64))
            narrow, wide = narrow + narrow_width(spec), wide + int(spec.width)
        joined = {key: np.concatenate(value) for key, value in parts.items()}
        return cls(
            narrow=narrow, wide=wide, copy_from=joined["copy_from"], copy_to=joined["copy_to"],
            bin_from=joined["bin_from"], bin_to=joined["bin_to"], left=joined["edges"][:, 0],
            width=joined["edges"][:, 1], fill=joined["edges"][:, 2],
        )  # fmt: skip

    @property
    def value_columns(self) -> np.ndarray:
        """The narrow columns holding a binned column's value (NaN where the value is missing)."""
        return np.unique(self.bin_from)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """The wide features of a narrow batch; a wide batch as it is."""
        import torch

        if batch.shape[-1] != self.narrow:  # `of` builds none where narrow = wide
            return batch
        out = batch.new_empty((*batch.shape[:-1], self.wide))
        out[..., torch.from_numpy(self.copy_to)] = batch[..., torch.from_numpy(self.copy_from)]
        values = batch[..., torch.from_numpy(self.bin_from)].double()
        values = torch.where(values.isnan(), torch.from_numpy(self.fill), values)
        bins = (values - torch.from_numpy(self.left)) / torch.from_numpy(self.width)
        out[..., torch.from_numpy(self.bin_to)] = bins.clamp_(0.0, 1.0).to(out.dtype)
        return out
