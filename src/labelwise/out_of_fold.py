"""The out-of-fold predictions of a cross-fitted run (``--folds``): every training row, predicted by the member
that never trained on it, kept in ``RUN/out_of_fold.csv``.

They are what the run's calibration and decisions were fitted on, and what finding likely label errors reads
(`labelwise.label_issues`): a prediction of a row by a model that saw its label would agree with the label, right
or wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from labelwise.task import Task, join_labels

__all__ = ["OUT_OF_FOLD_FILE", "load_out_of_fold", "out_of_fold_frame", "save_out_of_fold"]

OUT_OF_FOLD_FILE = "out_of_fold.csv"


def out_of_fold_frame(
    probs: torch.Tensor, targets: torch.Tensor, *, rows: np.ndarray, folds: np.ndarray, task: Task
) -> pd.DataFrame:
    """``row`` (0-based row of the training table), ``fold``, ``label`` (as written) and ``p:<class>`` columns.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> frame = out_of_fold_frame(torch.tensor([[0.8, 0.2]]), torch.tensor([1.0]), rows=np.array([3]),
        ...                           folds=np.array([0]), task=task)
        >>> frame.to_dict("records")
        [{'row': 3, 'fold': 0, 'label': 'yes', 'p:no': 0.8..., 'p:yes': 0.2...}]
    """
    frame = pd.DataFrame({"row": rows.astype(np.int64), "fold": folds.astype(np.int64)})
    frame["label"] = join_labels(task.decode(targets), sep=task.label_sep)
    columns = pd.DataFrame(probs.numpy(), columns=[f"p:{cls}" for cls in task.classes])
    return pd.concat([frame, columns], axis=1)


def save_out_of_fold(folder: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` as ``folder/out_of_fold.csv``."""
    frame.to_csv(folder / OUT_OF_FOLD_FILE, index=False)


def load_out_of_fold(folder: Path) -> pd.DataFrame | None:
    """``folder/out_of_fold.csv``, or None when the run was not cross-fitted."""
    path = folder / OUT_OF_FOLD_FILE
    if not path.is_file():
        return None
    return pd.read_csv(path, keep_default_na=False, dtype={"label": str})
