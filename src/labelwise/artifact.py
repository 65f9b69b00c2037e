"""The run directory on disk: ``model.safetensors`` (weights) + ``labelwise.json`` (everything else).

Loading never unpickles and never imports or runs anything named by the artifact: weights go through
safetensors, metadata through JSON, and the architecture is rebuilt from labelwise's own registry. The SHA-256
of the weights file is recorded in ``labelwise.json`` and checked on load, so a truncated, swapped or edited
weights file is refused instead of giving different predictions. Writes are atomic at the directory level: the
new run is assembled in a sibling staging folder and swapped into place with ``os.replace``, so a crash leaves
the previous run directory or none, never half of one.

Training stages its run in ``RUN.partial`` (`training_dir`), a fixed name beside ``RUN``, so that a run killed
mid-training leaves its checkpoints where ``labelwise train ... --resume`` finds them; ``RUN`` itself only ever
receives a finished run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelwise._arrays import is_tensor
from labelwise._files import file_mode
from labelwise.errors import ArtifactError

if TYPE_CHECKING:
    import torch

# torch and safetensors are imported by the functions that move weights: `predict --backend onnx` reads a run's
# metadata here (to check its export is current) and must not import torch.

__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "READABLE_VERSIONS",
    "WEIGHTS_FILE",
    "check_training_dir",
    "load_metadata",
    "load_weights",
    "partial_dir",
    "save_artifact",
    "staging_dir",
    "training_dir",
    "upgrade_metadata",
]

# 2: labelwise.json records the weights' SHA-256 (``weights``); version 1 runs had none and are not read.
# 3: the head type is the Task's (``task.head``: one of `labelwise.task.HeadType`, ``ranked`` included) instead of
#    ``task.binary_head`` + ``task.one_vs_rest`` + ``head.outputs``; the preprocessing lists one encoder per input
#    column; ``training.options`` holds every option. `upgrade_metadata` reads version 2 into version 3.
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "labelwise.json"


def partial_dir(run_dir: str | os.PathLike[str]) -> Path:
    """Where training assembles ``run_dir``: ``RUN.partial`` beside it.

    Example:
        >>> partial_dir("runs/cancer").as_posix()
        'runs/cancer.partial'
    """
    target = Path(run_dir)
    return target.parent / f"{target.name}.partial"


@contextmanager
def training_dir(
    run_dir: str | os.PathLike[str], *, resume: bool, is_resumable: Callable[[Path], bool]
) -> Iterator[Path]:
    """Yield ``RUN.partial`` to train in; on success swap it into place as ``run_dir``.

    On an exception the folder is kept when ``is_resumable(folder)`` (it holds a checkpoint: work that
    ``resume=True`` continues), and removed otherwise, so a run that fails on bad input writes nothing.

    Args:
        run_dir: the run directory to produce.
        resume: continue in an existing ``RUN.partial``; without one, start afresh.
        is_resumable: whether a ``RUN.partial`` holds work worth keeping.

    Raises:
        ArtifactError: ``run_dir`` is a file, its folder cannot be created, or ``RUN.partial`` holds an
            interrupted run and ``resume`` is False (starting over would throw that work away).
    """
    target, work = Path(run_dir), partial_dir(run_dir)
    check_training_dir(target, resume=resume, is_resumable=is_resumable)
    if work.exists() and not (resume and is_resumable(work)):
        shutil.rmtree(work)
    work.mkdir(exist_ok=True)
    try:
        yield work
    except BaseException:
        if not is_resumable(work):
            shutil.rmtree(work, ignore_errors=True)
        raise
    _swap_into_place(work, target)


def check_training_dir(run_dir: str | os.PathLike[str], *, resume: bool, is_resumable: Callable[[Path], bool]) -> None:
    """The refusals of `training_dir`, without touching the disk: `labelwise.fit` asks before it reads the data.

    Raises:
        ArtifactError: as `training_dir`.
    """
    target = Path(run_dir)
    _check_can_hold_a_run(target)
    work = partial_dir(target)
    if work.exists() and not resume and is_resumable(work):
        raise ArtifactError(
            f"{str(work)!r} holds the checkpoints of an interrupted training run. Pass --resume (fit(resume=True)) "
            "to continue it, or delete that folder to start over."
        )


@contextmanager
def staging_dir(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder beside ``run_dir``; on success swap it into place as ``run_dir``.

    Whatever the body writes (checkpoints, logs, the artifact) appears at ``run_dir`` only if the body
    finishes. On an exception the staging folder is removed and an existing ``run_dir`` is untouched.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with staging_dir(Path(tmp) / "run") as stage:
        ...         _ = (stage / "x.txt").write_text("hi")
        ...     (Path(tmp) / "run" / "x.txt").read_text()
        'hi'
    """
    target = Path(run_dir)
    _check_can_hold_a_run(target)
    stage = target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _swap_into_place(stage, target)


def _check_can_hold_a_run(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"--out {str(target)!r} is a file; expected a directory for the run. Pass another path.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArtifactError(
            f"cannot create the folder {str(target.parent)!r} for the run: {err.strerror}. Pass another --out."
        ) from err


def _swap_into_place(stage: Path, target: Path) -> None:
    # os.replace cannot replace a non-empty directory, so the old run steps aside first; between the two
    # renames the run is absent (a crash there leaves "none"), never mixed.
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    if target.exists():
        os.replace(target, old)
    os.replace(stage, target)
    shutil.rmtree(old, ignore_errors=True)


def save_artifact(stage: Path, *, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write weights and metadata (with the weights' checksum) into a staging folder (see `staging_dir`)."""
    from safetensors.torch import save_file

    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    weights = stage / WEIGHTS_FILE
    save_file(tensors, str(weights))
    # safetensors creates the file readable by its owner only; give it the mode of any file the user writes.
    os.chmod(weights, file_mode())
    data = weights.read_bytes()
    payload = {
        "format_version": FORMAT_VERSION,
        "weights": {"file": WEIGHTS_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        **metadata,
    }
    (stage / METADATA_FILE).write_text(json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8")


def load_metadata(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``labelwise.json`` of a run directory: valid JSON, known format version, weights record."""
    path = Path(run_dir)
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        what = "does not exist" if not path.exists() else f"holds no {METADATA_FILE}"
        raise ArtifactError(
            f"{str(path)!r} {what}; expected a run directory written by `labelwise train --out RUN`. "
            "Check the path, or train a model first."
        )
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{str(meta_path)!r} is not valid JSON ({err}); the run is damaged. Retrain it.") from err
    if not isinstance(metadata, dict):
        raise ArtifactError(
            f"{str(meta_path)!r} holds a JSON {type(metadata).__name__}, expected an object; the run is damaged. "
            "Retrain it."
        )
    version = metadata.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ArtifactError(
            f"{str(meta_path)!r} has format_version {version!r}; this labelwise reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Use the labelwise version that wrote it (see its `versions` "
            "entry), or retrain."
        )
    _expected_sha256(metadata, meta_path)  # fail here, before any weights are read
    return upgrade_metadata(metadata)


def upgrade_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """``labelwise.json`` of any readable version, as the current version writes it (a new dict).

    Version 2 kept whether a softmax head ranks its classes in chunks in ``head.outputs``; version 3 keeps it in the
    Task's head type. The Task (`labelwise.task.Task.from_dict`) and the preprocessing (`inputs_from_dict`) read
    their version-2 entries themselves.
    """
    if metadata.get("format_version") == FORMAT_VERSION:
        return metadata
    upgraded = {**metadata, "format_version": FORMAT_VERSION}
    if isinstance(metadata.get("head"), dict) and metadata["head"].get("outputs") == "ranked":
        # A version-2 ranked run is a multiclass softmax (binary_head "one", one_vs_rest False) ranked in chunks.
        legacy = ("binary_head", "one_vs_rest")
        upgraded["task"] = {**{k: v for k, v in metadata["task"].items() if k not in legacy}, "head": "ranked"}
    return upgraded


def load_weights(run_dir: str | os.PathLike[str], metadata: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` (never a pickle) after checking it against the checksum in ``metadata``."""
    path = Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise ArtifactError(f"{str(path)!r} is missing; the run is incomplete. Retrain it.")
    data = path.read_bytes()
    expected = _expected_sha256(metadata, Path(run_dir) / METADATA_FILE)
    if hashlib.sha256(data).hexdigest() != expected:
        recorded = metadata["weights"].get("bytes")
        raise ArtifactError(
            f"{str(path)!r} does not match the checksum recorded in {METADATA_FILE} ({len(data)} bytes, "
            f"{recorded} recorded): the weights were truncated, edited or swapped since training. "
            "Restore the run from a copy, or retrain it."
        )
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, OSError, ValueError) as err:
        raise ArtifactError(
            f"{str(path)!r} cannot be read as safetensors ({err}); the run is damaged. Retrain it."
        ) from err


def _expected_sha256(metadata: dict[str, Any], meta_path: Path) -> str:
    record = metadata.get("weights")
    digest = record.get("sha256") if isinstance(record, dict) else None
    if not isinstance(digest, str) or len(digest) != 64:
        raise ArtifactError(
            f"{str(meta_path)!r} records no SHA-256 of the weights (`weights.sha256`); the run is damaged or was "
            "edited by hand. Retrain it."
        )
    return digest


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if is_tensor(value):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
