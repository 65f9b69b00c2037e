"""The finish stage: the head's calibration and decision policy on the validation rows, their metrics, the record.

The validation metrics come from the very calls `labelwise.Classifier.evaluate` makes (`Head.predict`, then
`Head.metrics`), so a run's recorded metrics and ``evaluate`` on the same rows have the same keys and values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labelwise._class_file import count_targets
from labelwise.classifier import Classifier
from labelwise.heads import Fitted, Head, HeadOutputs, Truth, create_head
from labelwise.options import FitOptions
from labelwise.out_of_fold import out_of_fold_frame
from labelwise.pipeline.prepare import Prepared
from labelwise.pipeline.training import Trained
from labelwise.record import RunRecord, library_versions
from labelwise.task import Task

__all__ = ["finish"]


def finish(trained: Trained, prepared: Prepared, options: FitOptions) -> Classifier:
    """Fit the head's calibration and policy on the validation rows, score them, and assemble the Classifier."""
    result, targets = trained.result, prepared.valid_targets
    head = create_head(trained.task, result.network)
    raw = result.valid_outputs
    fitted = head.fit(raw, targets, options.decide, seed=options.train.seed)
    train_counts = count_targets(prepared.train_targets, trained.task)  # evaluate's head/torso/tail segments
    outputs = head.predict(raw, fitted)
    metrics = _valid_metrics(head, outputs, fitted, targets=targets, train_counts=np.asarray(train_counts))
    record = RunRecord(
        target=prepared.target,
        feature_columns=prepared.feature_columns,
        training=_training_record(trained, prepared, options),
        train_counts=tuple(train_counts),
        head=trained.head,
        versions=library_versions(),
        metrics={"valid": metrics},
    )
    return Classifier(
        task=trained.task,
        network=result.network,
        inputs=prepared.inputs,
        model_spec=trained.spec,
        fitted=fitted,
        record=record,
        out_of_fold=_out_of_fold(outputs, prepared, trained.task),
    )


def _valid_metrics(
    head: Head, outputs: HeadOutputs, fitted: Fitted, *, targets: Any, train_counts: np.ndarray
) -> dict[str, float]:
    truth = Truth(known=np.ones(len(targets), dtype=bool), targets=targets)
    return head.metrics(outputs, truth, fitted, train_counts=train_counts)


def _out_of_fold(outputs: HeadOutputs, prepared: Prepared, task: Task) -> pd.DataFrame | None:
    """The out-of-fold predictions of a cross-fitted run, with each row's place in the input table and its fold."""
    if prepared.folds is None or prepared.valid_rows is None or outputs.out.probs is None:
        return None
    return out_of_fold_frame(
        outputs.out.probs, prepared.valid_targets, rows=prepared.valid_rows, folds=prepared.folds, task=task
    )


def _training_record(trained: Trained, prepared: Prepared, options: FitOptions) -> dict[str, Any]:
    result = trained.result
    return {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped_reason,
        "history": result.history,
        "guards": result.guards,
        **({"members": result.members} if result.members else {}),
        "balance": trained.balance.message,
        **prepared.record,
        "config": options.train.to_dict(),
        "decide": options.decide.to_dict(),
        "options": options.to_dict(),
    }
