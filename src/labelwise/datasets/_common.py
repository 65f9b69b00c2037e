"""What more than one family of demo writers uses: the seeded stratified split and the CSV writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def split_three(labels: np.ndarray, fractions: tuple[float, float, float], *, seed: int) -> list[np.ndarray]:
    """Row indices split into train/valid/test of about ``fractions``, each stratified by ``labels``, sorted."""
    from sklearn.model_selection import train_test_split  # imported here: keeps `import labelwise` light

    index = np.arange(len(labels))
    _, f_valid, f_test = fractions
    rest, test = train_test_split(index, test_size=f_test, stratify=labels, random_state=seed)
    train, valid = train_test_split(rest, test_size=f_valid / (1.0 - f_test), stratify=labels[rest], random_state=seed)
    return [np.sort(part) for part in (train, valid, test)]


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")
