"""The stages `labelwise.fit` composes, each a plain function of plain values (see `labelwise.fitting`).

Reading the data, fitting the inputs, building the model spec and the datasets, the checks before training,
the records written into the run, and the ranked finish of a large softmax head (`labelwise.large_head`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labelwise._version import __version__
from labelwise.classifier import Classifier, Predictions, Truth
from labelwise.data.sources import Source, load_source, source_from_frame
from labelwise.data.splits import Split
from labelwise.decide.config import DecideConfig
from labelwise.decide.conformal import min_calibration_size
from labelwise.errors import DataError
from labelwise.inputs import Inputs, Values
from labelwise.large_head import fit_ranked_calibration, fit_ranked_policy, ranked_decisions
from labelwise.losses import Balance
from labelwise.models import ModelSpec
from labelwise.models.head import backbone_and_head
from labelwise.ranking import AUTO_TOP_K
from labelwise.task import Task
from labelwise.train import TrainConfig, TrainResult

__all__ = [
    "FitOptions",
    "Prepared",
    "check_enough_to_calibrate",
    "finish_ranked",
    "read_source",
    "run_record",
    "training_record",
    "library_versions",
]


@dataclass(frozen=True)
class FitOptions:
    """What `labelwise.fit` was asked for beyond the data and the labels."""

    model: str
    pretrained: bool
    image_size: int | None
    decide: DecideConfig
    config: TrainConfig
    skip_bad: bool
    progress: bool


@dataclass(frozen=True)
class Prepared:
    """The data stage's output: encoded inputs and targets of the readable rows, and the split over them."""

    inputs: Inputs
    values: Values
    targets: torch.Tensor
    split: Split
    skipped: list[tuple[str, str]]


def read_source(data: Any, *, target: str | list[str] | None, image_col: str | None) -> Source:
    if isinstance(data, Source):
        source = data
    elif isinstance(data, (str, os.PathLike)):
        source = load_source(Path(data), target=target, image_col=image_col, for_training=True)
    else:
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise DataError(
                f"cannot train on {type(data).__name__}; expected a path to a CSV/Parquet file or an image folder, "
                "or a pandas DataFrame. For arrays use `labelwise.LabelwiseClassifier().fit(X, y)`."
            )
        source = source_from_frame(data, target=target, image_col=image_col)
    if source.labels is None:
        raise DataError("the data has no labels; pass `target=` (CLI: --target) naming the label column(s).")
    return source


def check_enough_to_calibrate(num_valid: int, decide: DecideConfig) -> None:
    """Fail before training when the validation split cannot carry the asked-for conformal guarantee."""
    if decide.conformal is not None and num_valid < (need := min_calibration_size(decide.conformal)):
        raise DataError(
            f"--conformal {decide.conformal} needs at least {need} validation items to guarantee that level; the "
            f"validation split holds {num_valid}. Use more data or a larger validation split (an is_valid "
            "column or valid/ folder), or a lower --conformal level."
        )


def run_record(data: Prepared, task: Task, spec: ModelSpec, config: TrainConfig) -> dict[str, Any]:
    """What a resumed run must share with the one it continues: the prepared data and what shapes training.

    The time budget, the accelerator, the workers, the guards, the loggers, and the devices, nodes, strategy and
    precision may change between the two.
    """
    digest = hashlib.sha256()
    split = (torch.from_numpy(data.split.train), torch.from_numpy(data.split.valid))
    for tensor in (*data.values.parts.values(), data.targets, *split):
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    digest.update(json.dumps(data.inputs.to_dict(), sort_keys=True, default=str).encode())
    # Devices, nodes, strategy and precision too: each process takes a slice of the same batches (see
    # labelwise.train.distributed), so a run resumed on other hardware takes the steps it would have taken.
    free = {"time_budget", "accelerator", "num_workers", "guards", "loggers", "devices", "num_nodes", "strategy",
            "precision"}  # fmt: skip
    options = {k: v for k, v in config.to_dict().items() if k not in free}
    return {"data": digest.hexdigest(), "options": {**options, "task": task.to_dict(), "model": spec.to_dict()}}


def training_record(result: TrainResult, data: Prepared, balance: Balance, options: FitOptions) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped_reason,
        "history": result.history,
        "guards": result.guards,
        "balance": balance.message,
        "split": data.split.how,
        "num_train": len(data.split.train),
        "num_valid": len(data.split.valid),
        "skipped_images": [list(item) for item in data.skipped],
        "config": options.config.to_dict(),
        "decide": options.decide.to_dict(),
    }


def library_versions() -> dict[str, str]:
    import lightning
    import timm
    import torchmetrics

    return {
        "labelwise": __version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torchmetrics": torchmetrics.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
    }


def finish_ranked(
    result: TrainResult,
    *,
    task: Task,
    inputs: Inputs,
    spec: ModelSpec,
    valid_targets: torch.Tensor,
    options: FitOptions,
    info: dict[str, Any],
) -> Classifier:
    """`_finish` for a head ranked in chunks (`labelwise.large_head`): from the validation features, never (N, C)."""
    assert result.valid_features is not None  # noqa: S101 - a ranked head's training returns them
    features, head = result.valid_features, backbone_and_head(result.network)[1]
    calibration = fit_ranked_calibration(features, head, valid_targets, seed=options.config.seed)
    policy = fit_ranked_policy(features, head, calibration, valid_targets, task, options.decide)
    clf = Classifier(
        task=task,
        network=result.network,
        inputs=inputs,
        model_spec=spec,
        calibration=calibration,
        policy=policy,
        info=info,
    )
    out, ranked, lse = ranked_decisions(features, head, calibration, policy, k=min(AUTO_TOP_K, task.num_classes))
    everything = np.ones(len(valid_targets), dtype=bool)
    predicted = Predictions(None, out, everything, [], ranked, features, lse)
    clf.info["metrics"] = {"valid": clf.metrics(predicted, Truth(known=everything, targets=valid_targets))}
    return clf
