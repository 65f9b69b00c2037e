"""Which rows of a streamed Parquet table are validation rows, decided per record batch without a global view.

An ``is_valid`` column decides when the table has one (the table contract); otherwise a seeded hash of the global
row number (its position counting through the files in sorted order) holds out `VALID_FRACTION` of the rows. Either
way at most `MAX_VALID_ROWS` validation rows are kept: validation is read into memory once, as tensors, because
temperature scaling and threshold tuning need all of its logits at once; 100,000 rows bound that memory (8 MB of
float32 at 20 features, plus the logits) while a rate measured on them is exact to about +-0.3 points (95%).
The hash is splitmix64, so the rule depends on nothing but the seed and the row number: every rank and worker
reaches the same answer for the same row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelwise.data.parquet_scan import ParquetScan, read_unit
from labelwise.data.sources import IS_VALID_COLUMN, _is_valid

__all__ = ["MAX_VALID_ROWS", "VALID_FRACTION", "ValidRule", "fill_text", "row_hash"]

VALID_FRACTION = 0.1
MAX_VALID_ROWS = 100_000
_MASK64 = (1 << 64) - 1


def row_hash(rows: np.ndarray, *, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per global row number, fixed by ``seed`` (splitmix64).

    Example:
        >>> values = row_hash(np.arange(100_000), seed=0)
        >>> bool(abs(values.mean() - 0.5) < 0.01), row_hash(np.arange(3), seed=0).tolist() == values[:3].tolist()
        (True, True)
    """
    # Python ints for the seed's offset: numpy warns on scalar uint64 overflow, while array arithmetic wraps silently.
    offset = np.uint64(((seed + 1) * 0x9E3779B97F4A7C15) & _MASK64)
    z = rows.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + offset
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.asarray((z >> np.uint64(11)).astype(np.float64) / float(1 << 53))


def fill_text(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Parquet stores real nulls; in a string target column they read as "" (no label), as `read_table` does."""
    column = frame[target]
    if isinstance(column.dtype, pd.StringDtype | np.dtypes.ObjectDType) and column.isna().any():
        frame = frame.assign(**{target: column.where(column.notna(), "")})
    return frame


@dataclass(frozen=True, eq=False)
class ValidRule:
    """Which rows are held out for validation, and which of those are kept in memory.

    Attributes:
        column: ``"is_valid"`` when the table has that column, else None (the hash rule).
        fraction: hash rule: the fraction of rows held out; ``is_valid`` rule: the fraction of the marked rows kept
            (below 1 when more than `MAX_VALID_ROWS` are marked; the others are used for nothing).
        seed: seeds the hash.
        train_per_unit: training rows per work unit of the scan.
        how: the rule in words, for the training record.
    """

    column: str | None
    fraction: float
    seed: int
    train_per_unit: np.ndarray
    how: str

    @classmethod
    def create(cls, scan: ParquetScan, *, seed: int, max_valid: int = MAX_VALID_ROWS) -> ValidRule:
        """The rule for ``scan``: its ``is_valid`` column (read once, alone) or the seeded hash of row numbers."""
        units, rows = scan.units(), scan.unit_rows()
        if IS_VALID_COLUMN not in scan.columns:
            fraction = min(VALID_FRACTION, max_valid / max(scan.num_rows, 1))
            held = np.array([int((row_hash(np.arange(s, s + n), seed=seed) < fraction).sum()) for (_, _, s), n in
                             zip(units, rows, strict=True)], dtype=np.int64)  # fmt: skip
            how = f"seeded hash of the row number holds out {fraction:.3%} of rows (seed {seed})"
            return cls(None, fraction, seed, rows - held, how)
        marked = np.zeros(len(units), dtype=np.int64)
        for index, unit in enumerate(units):
            frames = read_unit(scan, unit, columns=[IS_VALID_COLUMN])
            marked[index] = sum(int(_is_valid(frame).sum()) for frame in frames)
        keep = min(1.0, max_valid / max(int(marked.sum()), 1))
        how = "given (is_valid column)" + (f", {keep:.3%} of the marked rows kept (seeded hash)" if keep < 1 else "")
        return cls(IS_VALID_COLUMN, keep, seed, rows - marked, how)

    @property
    def columns(self) -> list[str]:
        """The columns the rule reads."""
        return [self.column] if self.column else []

    def train_rows_per_unit(self, scan: ParquetScan) -> np.ndarray:
        """Training rows per work unit of ``scan`` (the scan the rule was created for)."""
        if len(self.train_per_unit) != len(scan.units()):
            raise ValueError("this ValidRule was created for another scan")
        return self.train_per_unit

    def is_valid(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` (its index: global row numbers) not used for training."""
        if self.column is not None:
            return _is_valid(frame)
        return np.asarray(row_hash(frame.index.to_numpy(), seed=self.seed) < self.fraction)

    def is_kept(self, frame: pd.DataFrame) -> np.ndarray:
        """Validation rows of ``frame`` kept in memory for early stopping, calibration and thresholds."""
        if self.column is None:
            return self.is_valid(frame)
        keep = row_hash(frame.index.to_numpy(), seed=self.seed + 1) < self.fraction
        return np.asarray(self.is_valid(frame) & keep)
