"""Writer of the ``extreme`` demo: a generated table with 100,000 Zipf-distributed classes.

Each class ``c`` has a prototype ``mu_c ~ N(0, I_32)``; an item of class ``c`` has the features
``mu_c + N(0, NOISE^2 I)``. The nearest prototype is right for nearly every item (random prototypes in 32
dimensions lie far apart next to the noise), so the structure is learnable by a linear softmax over the
features, and what limits a model is how many items of a class it saw. Class frequencies follow Zipf's law
(``P(rank r) ~ 1 / r``): a head of a few classes holds a large share of the rows, then a torso, then a long tail.
Every class gets one training row besides, so the vocabulary is the whole 100,000 classes and the test set never
holds a class training did not see; the validation and test rows are drawn from the Zipf distribution alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NUM_CLASSES = 100_000
NUM_FEATURES = 32
NOISE = 0.5
# Rows drawn from Zipf's law on top of the one guaranteed row per class, for training, validation and test.
ZIPF_TRAIN, NUM_VALID, NUM_TEST = 150_000, 10_000, 10_000


def _labels(classes: np.ndarray, width: int) -> np.ndarray:
    # Strings with a fixed width, so the class names sort in rank order: "c000000" is the most frequent.
    return np.char.add("c", np.char.zfill(classes.astype(str), width)).astype(object)


def _frame(classes: np.ndarray, prototypes: np.ndarray, rng: np.random.Generator, *, width: int) -> pd.DataFrame:
    features = prototypes[classes] + rng.normal(0.0, NOISE, size=(len(classes), prototypes.shape[1]))
    frame = pd.DataFrame(features.astype(np.float32), columns=[f"f{j}" for j in range(prototypes.shape[1])])
    frame["label"] = _labels(classes, width)
    return frame


def extreme_frames(
    seed: int,
    *,
    num_classes: int = NUM_CLASSES,
    zipf_train: int = ZIPF_TRAIN,
    num_valid: int = NUM_VALID,
    num_test: int = NUM_TEST,
    num_features: int = NUM_FEATURES,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training table (``is_valid`` marks the validation rows) and the test table, as described above."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(num_classes, num_features))
    zipf = 1.0 / np.arange(1, num_classes + 1)
    zipf /= zipf.sum()
    width = len(str(num_classes - 1))
    train = np.concatenate([np.arange(num_classes), rng.choice(num_classes, size=zipf_train, p=zipf)])
    valid = rng.choice(num_classes, size=num_valid, p=zipf)
    trainval = _frame(np.concatenate([train, valid]), prototypes, rng, width=width)
    trainval["is_valid"] = np.arange(len(trainval)) >= len(train)
    trainval = trainval.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows in no telling order
    test = _frame(rng.choice(num_classes, size=num_test, p=zipf), prototypes, rng, width=width)
    return trainval, test


def write_extreme(folder: Path, seed: int) -> None:
    """``train.parquet`` (with ``is_valid``) and ``test.parquet``."""
    trainval, test = extreme_frames(seed)
    trainval.to_parquet(folder / "train.parquet", index=False)
    test.to_parquet(folder / "test.parquet", index=False)
