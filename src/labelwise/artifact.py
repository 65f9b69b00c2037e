"""The run directory on disk: ``model.safetensors`` (weights) + ``labelwise.json`` (everything else).

Loading never unpickles: weights go through safetensors, metadata through JSON. Writes are atomic at
the directory level: the new run is assembled in a sibling staging folder and swapped into place with
``os.replace``, so a crash leaves the previous run directory or none, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from labelwise.errors import ArtifactError

__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "WEIGHTS_FILE",
    "load_metadata",
    "load_weights",
    "save_artifact",
    "staging_dir",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "labelwise.json"


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
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"--out {str(target)!r} is a file; expected a directory for the run. Pass another path.")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArtifactError(
            f"cannot create the folder {str(parent)!r} for the run: {err.strerror}. Pass another --out."
        ) from err
    stage = parent / f".{target.name}.staging-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _swap_into_place(stage, target)


def _swap_into_place(stage: Path, target: Path) -> None:
    # os.replace cannot replace a non-empty directory, so the old run steps aside first; between the two
    # renames the run is absent (a crash there leaves "none"), never mixed.
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    if target.exists():
        os.replace(target, old)
    os.replace(stage, target)
    shutil.rmtree(old, ignore_errors=True)


def save_artifact(stage: Path, *, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write weights and metadata into a staging folder (see `staging_dir`)."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    save_file(tensors, str(stage / WEIGHTS_FILE))
    payload = {"format_version": FORMAT_VERSION, **metadata}
    (stage / METADATA_FILE).write_text(json.dumps(payload, indent=2, default=_json_default) + "\n", encoding="utf-8")


def load_metadata(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``labelwise.json`` of a run directory."""
    path = Path(run_dir)
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        what = "does not exist" if not path.exists() else f"holds no {METADATA_FILE}"
        raise ArtifactError(
            f"{str(path)!r} {what}; expected a run directory written by `labelwise train --out RUN`. "
            "Check the path, or train a model first."
        )
    try:
        metadata: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{str(meta_path)!r} is not valid JSON ({err}); the run is damaged. Retrain it.") from err
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{str(meta_path)!r} has format_version {version!r}; this labelwise reads version {FORMAT_VERSION}. "
            "Use the labelwise version that wrote it (see its `versions` entry), or retrain."
        )
    return metadata


def load_weights(run_dir: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` (never a pickle)."""
    path = Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise ArtifactError(f"{str(path)!r} is missing; the run is incomplete. Retrain it.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(
            f"{str(path)!r} cannot be read as safetensors ({err}); the run is damaged. Retrain it."
        ) from err


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
