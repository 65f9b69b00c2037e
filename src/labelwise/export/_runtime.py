"""Predict from an exported ONNX file with onnxruntime, through the same policy and table code as the torch backend.

For the runs the numpy runtime (`labelwise.export._table_runtime`) does not serve: images, and conformal sets.
`torch_onnx_classifier` rebuilds the Task, the inputs' description and the decision `Policy` from the metadata;
`OnnxClassifier` feeds the raw columns (or decoded pixels) to onnxruntime, takes the calibrated ``logits`` it
returns, and hands them to `Policy.decide` and `predictions_table`, exactly as `Classifier.predictions_frame` does
with the network's. Nothing here re-implements a decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from labelwise._predictions import predictions_table
from labelwise.classifier import _policy_from_dict
from labelwise.data.sources import Source
from labelwise.decide.policy import Policy
from labelwise.export._names import PIXELS
from labelwise.export._table_runtime import run_in_batches, table_feeds
from labelwise.heads.dense import decide_calibrated
from labelwise.inputs import Inputs, inputs_from_dict
from labelwise.ranking import output_top_k
from labelwise.task import Task

__all__ = ["OnnxClassifier", "torch_onnx_classifier"]


@dataclass
class OnnxClassifier:
    """An exported classifier run by onnxruntime; `load_onnx` builds one.

    ``task``, ``inputs``, ``policy`` and ``info`` mean what they mean on `Classifier`; ``policy`` may be replaced
    (``predict --top-k``), as there.
    """

    task: Task
    inputs: Inputs
    policy: Policy
    session: Any  # onnxruntime.InferenceSession: untyped third-party object
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    stored: dict[str, Any] = field(default_factory=dict, repr=False)  # the run's labelwise.json, weights aside

    def metadata(self) -> dict[str, Any]:
        """The exported run's metadata, as `Classifier.metadata` gives it (task, preprocessing, calibration, ...)."""
        return dict(self.stored)

    def predictions_frame(self, source: Source, *, skip_bad: bool = False, top_k: int | None = None) -> pd.DataFrame:
        """The ``predictions.csv`` table, as `Classifier.predictions_frame` writes it (``top_k`` likewise)."""
        table = self.inputs.table
        if table is None:  # an image model: `export_onnx` refuses runs of several input groups
            encoded = self.inputs.encode(source, skip_bad=skip_bad)
            logits, kept = self.calibrated_logits({PIXELS: encoded.values.only.numpy()}), encoded.kept
        else:
            logits, kept = self.calibrated_logits(table_feeds(table, source)), None
        policy = self.policy.with_top_k(top_k, self.task)  # checks top_k as `Classifier.predictions_frame` does
        out, ranked = decide_calibrated(
            logits, self.task, policy, top_k=output_top_k(top_k, num_classes=self.task.num_classes)
        )
        kept = np.ones(len(source.ids), dtype=bool) if kept is None else kept
        return predictions_table(out, source=source, kept=kept, task=self.task, ranked=ranked)

    def calibrated_logits(self, feeds: dict[str, np.ndarray]) -> torch.Tensor:
        """onnxruntime's calibrated ``logits`` ``(N, head_width)`` float32 for ONNX inputs ``feeds``, in batches."""
        return torch.from_numpy(run_in_batches(self.session, feeds, head_width=self.task.head_width))


def torch_onnx_classifier(session: Any, meta: dict[str, Any], file: Path) -> OnnxClassifier:
    """The classifier of an ONNX file's session and labelwise metadata (`labelwise.export._load.load_onnx`)."""
    known = {"format_version", "weights", "task", "preprocessing", "model", "calibration", "decision"}
    return OnnxClassifier(
        task=Task.from_dict(meta["task"]),
        inputs=inputs_from_dict(meta["preprocessing"]),
        policy=_policy_from_dict(meta["decision"]),
        session=session,
        path=file,
        info={k: v for k, v in meta.items() if k not in known},
        stored={k: v for k, v in meta.items() if k not in ("format_version", "weights")},
    )
