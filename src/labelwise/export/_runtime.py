"""Predict from an exported ONNX file with onnxruntime, through the same policy and table code as the torch backend.

`load_onnx` rebuilds the Task, the inputs' description and the decision `Policy` from the file's metadata;
`OnnxClassifier` feeds the raw columns (or decoded pixels) to onnxruntime, takes the calibrated ``logits`` it
returns, and hands them to `Policy.decide` and `predictions_table`, exactly as `Classifier.predictions_frame` does
with the network's. Nothing here re-implements a decision.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from labelwise import artifact
from labelwise.classifier import _policy_from_dict, predictions_table
from labelwise.data._columns import CategoricalColumn, category_keys
from labelwise.data._kind_columns import BooleanColumn
from labelwise.data.sources import Source
from labelwise.data.tables import NumericColumn, TablePreprocessor, bad_values_error
from labelwise.decide.policy import Policy
from labelwise.errors import ArtifactError, ConfigError, DataError
from labelwise.export._names import MISSING, PIXELS, input_name
from labelwise.export._onnx import KEY_FORMAT, KEY_RUN, ONNX_FILE, ONNX_FORMAT_VERSION
from labelwise.heads.dense import decide_calibrated
from labelwise.inputs import Inputs, inputs_from_dict
from labelwise.ranking import output_top_k
from labelwise.task import Task

__all__ = ["OnnxClassifier", "load_onnx"]

_BATCH = 512


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

    def predictions_frame(self, source: Source, *, skip_bad: bool = False, top_k: int | None = None) -> pd.DataFrame:
        """The ``predictions.csv`` table, as `Classifier.predictions_frame` writes it (``top_k`` likewise)."""
        table = self.inputs.table
        if table is None:  # an image model: `export_onnx` refuses runs of several input groups
            encoded = self.inputs.encode(source, skip_bad=skip_bad)
            logits, kept = self.calibrated_logits({PIXELS: encoded.values.only.numpy()}), encoded.kept
        else:
            logits, kept = self.calibrated_logits(_table_feeds(table, source)), None
        policy = self.policy.with_top_k(top_k, self.task)  # checks top_k as `Classifier.predictions_frame` does
        out, ranked = decide_calibrated(
            logits, self.task, policy, top_k=output_top_k(top_k, num_classes=self.task.num_classes)
        )
        kept = np.ones(len(source.ids), dtype=bool) if kept is None else kept
        return predictions_table(out, source=source, kept=kept, task=self.task, ranked=ranked)

    def calibrated_logits(self, feeds: dict[str, np.ndarray]) -> torch.Tensor:
        """onnxruntime's calibrated ``logits`` ``(N, head_width)`` float32 for ONNX inputs ``feeds``, in batches."""
        rows = len(next(iter(feeds.values()))) if feeds else 0
        parts = [
            self.session.run(["logits"], {k: v[i : i + _BATCH] for k, v in feeds.items()})[0]
            for i in range(0, rows, _BATCH)
        ]
        logits = np.concatenate(parts) if parts else np.empty((0, self.task.head_width), np.float32)
        return torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))


def _table_feeds(preprocessor: TablePreprocessor, source: Source) -> dict[str, np.ndarray]:
    """Raw feature columns as the ONNX inputs: float64 with NaN, or strings with ``""`` for missing."""
    if source.kind != "table":
        raise DataError(
            "this model was trained on a table, but the data given is a folder of images. "
            "Pass a CSV or Parquet file with the training feature columns."
        )
    frame = source.frame
    preprocessor.check_columns(frame)
    feeds: dict[str, np.ndarray] = {}
    problems = []
    for spec in preprocessor.specs:
        if isinstance(spec, NumericColumn | BooleanColumn):
            values, problem = spec.values(frame[spec.name])
            problems += [(spec.kind, problem)] if problem else []
            feeds[input_name(spec.name)] = values
        elif isinstance(spec, CategoricalColumn):
            codes, keys = category_keys(frame[spec.name])
            # A real "" cell would read as missing in ONNX; "\0" is a value no category has, so it stays unseen.
            names = np.array([key if key != MISSING else "\0" for key in keys] + [MISSING], dtype=object)
            feeds[input_name(spec.name)] = names[np.where(codes < 0, len(keys), codes)]
    if problems:
        raise bad_values_error(problems)
    return feeds


def load_onnx(path: str | os.PathLike[str]) -> OnnxClassifier:
    """Load an ONNX file written by `export_onnx`, or ``RUN/model.onnx`` when given a run directory.

    A run directory's ``model.onnx`` must come from the run's current weights: a run retrained since its export
    is refused rather than predicted with the old network.

    Raises:
        ArtifactError: no such file, a run without ``model.onnx``, a file onnxruntime cannot read, one without
            labelwise metadata or of an unknown format version, or an export of other weights than the run's.
        ConfigError: onnxruntime is not installed.
    """
    file = _onnx_file(Path(path))
    session = _session(file)
    props = dict(session.get_modelmeta().custom_metadata_map)
    meta = _run_metadata(props, file)
    if Path(path).is_dir() and (file.parent / artifact.METADATA_FILE).is_file():
        _check_same_weights(meta, file)
    known = {"format_version", "weights", "task", "preprocessing", "model", "calibration", "decision"}
    return OnnxClassifier(
        task=Task.from_dict(meta["task"]),
        inputs=inputs_from_dict(meta["preprocessing"]),
        policy=_policy_from_dict(meta["decision"]),
        session=session,
        path=file,
        info={k: v for k, v in meta.items() if k not in known},
    )


def _onnx_file(path: Path) -> Path:
    if path.is_dir():
        file = path / ONNX_FILE
        if not file.is_file():
            raise ArtifactError(
                f"the run {str(path)!r} holds no {ONNX_FILE}; expected an exported model for `--backend onnx`. "
                f"Export it first with `labelwise export {path}`, or pass the .onnx file itself."
            )
        return file
    if not path.is_file():
        raise ArtifactError(
            f"no file or folder at {str(path)!r}; expected an .onnx file written by `labelwise export`, or a run "
            "directory holding model.onnx. Check the path."
        )
    return path


def _session(file: Path) -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise ConfigError(
            "`--backend onnx` needs onnxruntime, which is not installed. Install it with `pip install labelwise[onnx]`."
        ) from err
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are for its developers, not our users
    try:
        return onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own untyped exceptions on a damaged file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ArtifactError(
            f"onnxruntime cannot read {str(file)!r} ({first}); expected an ONNX file written by `labelwise export`. "
            "Export the run again."
        ) from err


def _run_metadata(props: dict[str, str], file: Path) -> dict[str, Any]:
    if KEY_FORMAT not in props or KEY_RUN not in props:
        raise ArtifactError(
            f"{str(file)!r} holds no labelwise metadata ({KEY_FORMAT!r}, {KEY_RUN!r}); expected an ONNX file written "
            "by `labelwise export`. Export the run with labelwise to predict with it."
        )
    if props[KEY_FORMAT] != str(ONNX_FORMAT_VERSION):
        raise ArtifactError(
            f"{str(file)!r} has labelwise ONNX format version {props[KEY_FORMAT]!r}; this labelwise reads version "
            f"{ONNX_FORMAT_VERSION}. Upgrade labelwise, or export the run again with this version."
        )
    try:
        meta = json.loads(props[KEY_RUN])
    except json.JSONDecodeError as err:
        raise ArtifactError(
            f"the {KEY_RUN!r} metadata of {str(file)!r} is not valid JSON ({err}); export again."
        ) from err
    if not isinstance(meta, dict) or not {"task", "preprocessing", "decision"} <= set(meta):
        raise ArtifactError(
            f"the {KEY_RUN!r} metadata of {str(file)!r} lacks task/preprocessing/decision; export again."
        )
    return meta


def _check_same_weights(meta: dict[str, Any], file: Path) -> None:
    run = artifact.load_metadata(file.parent)
    exported = meta.get("weights", {}).get("sha256")
    if exported != run["weights"]["sha256"]:
        raise ArtifactError(
            f"{str(file)!r} was exported from other weights than the run's {artifact.WEIGHTS_FILE} (was the run "
            f"retrained since?); expected an export of the current run. Export it again with `labelwise export "
            f"{file.parent}`."
        )
