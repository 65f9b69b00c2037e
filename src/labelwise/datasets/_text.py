"""The text demo: "is this SMS spam?", from the SMS corpus that `labelwise.datasets.text` reads out of an installed
package (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labelwise.datasets._common import split_three, write_csv
from labelwise.datasets.text import sms_spam


def write_spam(folder: Path, seed: int) -> None:
    """``train.csv`` (``text``, ``label``, ``is_valid``) and ``test.csv``, split 60/20/20 stratified by label."""
    frame = sms_spam()
    train, valid, test = split_three(frame["label"].to_numpy(), (0.6, 0.2, 0.2), seed=seed)
    trainval = frame.iloc[np.sort(np.concatenate([train, valid]))].copy()
    trainval["is_valid"] = trainval.index.isin(valid)
    write_csv(trainval, folder / "train.csv")
    write_csv(frame.iloc[test], folder / "test.csv")
