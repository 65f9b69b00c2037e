"""Writers of the table demos made from load_breast_cancer: ``cancer`` and ``cancer-imbalanced``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from labelwise.datasets._common import split_three, write_csv


def _cancer_frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    # Underscores instead of spaces, so column names need no quoting on a command line.
    frame = data.data.rename(columns=lambda c: str(c).replace(" ", "_"))
    frame["diagnosis"] = np.asarray(data.target_names, dtype=object)[data.target.to_numpy()]
    return frame


def write_cancer(folder: Path, seed: int, *, positive_fraction: float = 1.0) -> None:
    """``train.csv`` (with ``is_valid``) and ``test.csv``, split 64/16/20; below 1, keep that much of the malignant."""
    frame = _cancer_frame()
    labels = frame["diagnosis"].to_numpy()
    parts = split_three(labels, (0.64, 0.16, 0.20), seed=seed)
    if positive_fraction < 1.0:
        rng = np.random.default_rng(seed)
        parts = [
            _keep_fraction(part, labels[part] == "malignant", fraction=positive_fraction, rng=rng) for part in parts
        ]
    train, valid, test = parts
    trainval = frame.iloc[np.sort(np.concatenate([train, valid]))].copy()
    trainval["is_valid"] = trainval.index.isin(valid)
    write_csv(trainval, folder / "train.csv")
    write_csv(frame.iloc[test], folder / "test.csv")


def _keep_fraction(rows: np.ndarray, positive: np.ndarray, *, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``rows`` with a seeded ``fraction`` (at least one) of the positive rows and all the others, sorted."""
    pos = rows[positive]
    keep = rng.choice(pos, size=max(1, round(fraction * len(pos))), replace=False)
    return np.sort(np.concatenate([rows[~positive], keep]))
