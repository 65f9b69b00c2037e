"""Read an exported ONNX file (`load_onnx`) and choose who predicts with it: numpy for a table, else torch.

A run of table columns (numeric, categorical, boolean, datetime) with a dense head and no conformal sets is
predicted by `labelwise.export._table_runtime` with numpy and onnxruntime alone: no torch import, which is most of
a one-off `predict`'s time and memory. Images, and runs with conformal sets, go through the torch policy
(`labelwise.export._runtime`), as before; the predictions are the same either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labelwise import artifact
from labelwise.errors import ArtifactError, ConfigError
from labelwise.export._names import KEY_FORMAT, KEY_RUN, ONNX_FILE, ONNX_FORMAT_VERSION

__all__ = ["load_onnx"]


def load_onnx(path: str | os.PathLike[str], *, threads: int | None = None) -> Any:
    """Load an ONNX file written by `export_onnx`, or ``RUN/model.onnx`` when given a run directory.

    A run directory's ``model.onnx`` must come from the run's current weights: a run retrained since its export
    is refused rather than predicted with the old network. ``threads``: onnxruntime's threads per model call
    (None: its default, one per core); a server that batches small requests runs best on one (`labelwise serve`).

    Returns:
        a `labelwise.export.OnnxClassifier`, or for a table run the numpy `TableOnnxClassifier` (module docstring);
        both have ``task``, ``inputs``, ``policy``, ``info`` and ``predictions_frame``.

    Raises:
        ArtifactError: no such file, a run without ``model.onnx``, a file onnxruntime cannot read, one without
            labelwise metadata or of an unknown format version, or an export of other weights than the run's.
        ConfigError: onnxruntime is not installed.
    """
    file = _onnx_file(Path(path))
    session = _session(file, threads=threads)
    props = dict(session.get_modelmeta().custom_metadata_map)
    meta = _run_metadata(props, file)
    if Path(path).is_dir() and (file.parent / artifact.METADATA_FILE).is_file():
        _check_same_weights(meta, file)
    from labelwise.export._table_runtime import table_onnx_classifier

    table = table_onnx_classifier(session, meta, file)
    if table is not None:
        return table
    from labelwise.export._runtime import torch_onnx_classifier  # images, conformal sets: the torch policy

    return torch_onnx_classifier(session, meta, file)


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


def _session(file: Path, *, threads: int | None) -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise ConfigError(
            "`--backend onnx` needs onnxruntime, which is not installed. Install it with `pip install labelwise[onnx]`."
        ) from err
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are for its developers, not our users
    if threads is not None:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
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
