"""Checkpoints a killed training run can be resumed from.

Two files in ``run_dir/checkpoints``: ``best.ckpt`` (weights of the epoch with the lowest validation loss) and
``last.ckpt`` (the whole training state after the latest validated epoch: weights, optimizer, schedule, loop
counters, early stopping, the epoch history). Both are written to a temporary file that is renamed over the old
one (`AtomicCheckpointIO`), so a process killed mid-save leaves the previous checkpoint intact, never half of one.
Checkpoints are written at epoch ends only: a run killed mid-epoch resumes at the start of that epoch, because
resuming a shuffled epoch halfway would need the loader's position too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labelwise.errors import ConfigError

__all__ = [
    "BEST",
    "LAST",
    "RECORD_FILE",
    "check_run_record",
    "checkpoint_dir",
    "drop_resume_state",
    "last_checkpoint",
    "stored_choice",
]

BEST, LAST = "best", "last"
# What the run was started with (a digest of the prepared data and the options that shape training), so that
# a resume with other data or options is refused instead of mixing two runs in one model.
RECORD_FILE = "resume.json"


def checkpoint_dir(run_dir: Path) -> Path:
    """Where training keeps its checkpoints in ``run_dir``."""
    return run_dir / "checkpoints"


def last_checkpoint(run_dir: Path) -> Path | None:
    """``last.ckpt`` of ``run_dir`` if a validated epoch wrote one, else None."""
    path = checkpoint_dir(run_dir) / f"{LAST}.ckpt"
    return path if path.is_file() else None


def check_run_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Store ``record`` in ``run_dir``, or check it against the one a resumed run stored there.

    Raises:
        ConfigError: the stored record differs (other data, or other training options); names what changed.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> check_run_record(folder, {"data": "ab12", "options": {"lr": 0.01}})
        >>> check_run_record(folder, {"data": "ab12", "options": {"lr": 0.1}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        labelwise.errors.ConfigError: cannot resume ...: it was started with other options (lr: 0.01 -> 0.1). ...
    """
    path = run_dir / RECORD_FILE
    if not path.is_file():
        tmp = path.with_name(f".{RECORD_FILE}.tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return
    stored = json.loads(path.read_text(encoding="utf-8"))
    fresh = json.loads(json.dumps(record, default=str))  # the same JSON round trip the stored one went through
    changes = _changes(stored.get("options", {}), fresh.get("options", {}))
    what = [f"other options ({', '.join(changes)})"] if changes else []
    if stored.get("data") != fresh.get("data"):
        what.insert(0, "other data (the rows, labels or split differ)")
    if what:
        raise ConfigError(
            f"cannot resume {str(run_dir)!r}: it was started with {' and '.join(what)}. Resume with the same data "
            "and options, or delete that folder to start over."
        )


def stored_choice(run_dir: Path, key: str) -> str | None:
    """What the run being resumed chose for `key` when it started (its record's ``chosen``), or None.

    A choice made by measuring (`labelwise.huge.choose_head_loss` times the losses) could come out otherwise on
    a resume; the run keeps the one it trained with.
    """
    path = run_dir / RECORD_FILE
    if not path.is_file():
        return None
    found = json.loads(path.read_text(encoding="utf-8")).get("chosen", {}).get(key)
    return None if found is None else str(found)


def _changes(stored: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(fresh))
    return [f"{key}: {stored.get(key)!r} -> {fresh.get(key)!r}" for key in keys if stored.get(key) != fresh.get(key)]


def drop_resume_state(run_dir: Path) -> None:
    """Remove what only a resume needs (``last.ckpt`` with the optimizer state, the run record) from a finished run."""
    (checkpoint_dir(run_dir) / f"{LAST}.ckpt").unlink(missing_ok=True)
    (run_dir / RECORD_FILE).unlink(missing_ok=True)
