"""How many models a run cross-fits (``--folds``), and why: the rule of ``auto`` and the refusals of a given K.

``auto`` bags `AUTO_FOLDS` networks where that is cheap and pays: a table read into memory whose columns all feed
the tabular network, without a validation split of the user's own, of at most `AUTO_MAX_ROWS` rows, trained on one
process and logged to CSV only. There the
decision rests on every row's out-of-fold prediction instead of a 20 % split (on the imbalanced cancer table, 5
positives in validation instead of 27 out of fold), and the mean of the members predicts. Images and text keep one
network: their members would cost minutes, and the solved text model picks its L2 strength on the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labelwise.errors import ConfigError
from labelwise.inputs import Inputs
from labelwise.inputs.columns import FeatureGroup
from labelwise.options import FitOptions
from labelwise.task import Task, TaskKind

__all__ = ["AUTO_FOLDS", "AUTO_MAX_ROWS", "Folds", "resolve_folds"]

AUTO_FOLDS = 5
AUTO_MAX_ROWS = 20_000
_TABULAR_MODELS = ("auto", "mlp")


@dataclass(frozen=True)
class Folds:
    """``count`` models (1: one model on the split) and why that many."""

    count: int
    why: str


def resolve_folds(
    options: FitOptions, *, inputs: Inputs, task: Task, class_counts: Sequence[int], num_rows: int, given_valid: bool
) -> Folds:
    """The number of folds ``options.train.folds`` means for this data.

    Raises:
        ConfigError: a given K >= 2 where cross-fitting cannot run: the data names its validation rows, or training
            runs on several processes.
    """
    asked = options.train.folds
    scaled_out = options.train.devices not in (1, "auto") or options.train.num_nodes > 1
    logged = sorted(set(options.train.loggers) - {"csv"})
    if asked != "auto":
        if int(asked) >= 2:
            _check_can_cross_fit(int(asked), given_valid=given_valid, scaled_out=scaled_out, logged=logged)
            return Folds(int(asked), f"--folds {asked}")
        return Folds(1, "--folds 1")
    tabular = len(inputs.groups) == 1 and isinstance(inputs.groups[0], FeatureGroup)
    rarest = min(class_counts) if task.kind is not TaskKind.MULTILABEL else num_rows
    reasons = [
        (options.model.model not in _TABULAR_MODELS or not tabular, "the inputs are not a plain table"),
        (given_valid, "the data names its validation rows"),
        (scaled_out, "training runs on several processes"),
        (bool(logged), f"its training curves go to {' and '.join(logged)}"),
        (num_rows > AUTO_MAX_ROWS, f"more than {AUTO_MAX_ROWS:,} rows"),
        (rarest < AUTO_FOLDS, f"a class has fewer than {AUTO_FOLDS} items"),
    ]
    why_not = next((why for failed, why in reasons if failed), None)
    if why_not is not None:
        return Folds(1, f"one model: {why_not}")
    return Folds(AUTO_FOLDS, f"auto: a table of {num_rows:,} rows (at most {AUTO_MAX_ROWS:,} are cross-fitted)")


def _check_can_cross_fit(folds: int, *, given_valid: bool, scaled_out: bool, logged: list[str]) -> None:
    if given_valid:
        raise ConfigError(
            f"--folds {folds} with validation rows of your own (an is_valid column or a valid/ folder): cross-fitting "
            "predicts every row out of fold instead of a validation split. Drop --folds to keep your split, or drop "
            "the is_valid column to cross-fit."
        )
    if scaled_out:
        raise ConfigError(
            f"--folds {folds} with training on several processes (--devices / --num-nodes): cross-fitting trains its "
            "members one after another in one process. Pass --folds 1, or --devices 1."
        )
    if logged:
        raise ConfigError(
            f"--folds {folds} with --logger {' '.join(logged)}: the cross-fitted members train outside Lightning and "
            "log their mean curve to RUN/logs/metrics.csv only. Pass --folds 1 to log to "
            f"{' and '.join(logged)}, or drop that logger."
        )


def row_counts(targets: np.ndarray, task: Task) -> list[int]:
    """Items of each class (multilabel: rows holding each label) among the encoded ``targets``."""
    if task.kind is TaskKind.MULTILABEL:
        return [int(n) for n in targets.sum(axis=0)]
    return [int(n) for n in np.bincount(targets.astype(np.int64), minlength=task.num_classes)]
