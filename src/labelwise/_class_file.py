"""The class list of a large run, stored beside ``labelwise.json`` in ``classes.parquet``.

A run with more than `CLASS_FILE_ABOVE` classes keeps its class list (and the training rows per class) out of
``labelwise.json``: a million-entry JSON list is slow to parse and unreadable. ``classes.parquet`` holds a
``label`` column (string, int64 or bool, exactly the type of the classes) and a ``train_count`` int64 column;
``labelwise.json`` records ``classes: {file, bytes, sha256, count}`` like the weights, and loading checks the hash
before parsing, so a truncated, swapped or edited class file is refused. Smaller runs keep the classes in the Task
entry of ``labelwise.json`` and the counts under ``train_counts``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from labelwise.errors import ArtifactError
from labelwise.task import Label, Task, TaskKind

__all__ = [
    "CLASSES_FILE",
    "CLASS_FILE_ABOVE",
    "count_targets",
    "move_class_list",
    "read_class_file",
    "restore_class_list",
    "write_class_file",
]

CLASSES_FILE = "classes.parquet"
# Up to this many classes the list stays in labelwise.json, so existing small runs read and diff as before.
CLASS_FILE_ABOVE = 1000


def count_targets(targets: torch.Tensor, task: Task) -> list[int]:
    """Training rows per class, ``(C,)`` in ``task.classes`` order (multilabel: positive rows per label).

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> count_targets(task.encode(["a", "c", "c"]), task)
        [1, 0, 2]
    """
    if task.kind is TaskKind.MULTILABEL:
        return (targets > 0.5).sum(dim=0).long().tolist()
    return torch.bincount(targets.long().flatten(), minlength=task.num_classes).tolist()


def write_class_file(stage: Path, *, classes: tuple[Label, ...], train_counts: Any) -> dict[str, Any]:
    """Write ``classes.parquet`` into a staging folder; return its ``{file, bytes, sha256, count}`` record.

    Args:
        stage: the staging folder of the run (see `labelwise.artifact.staging_dir`).
        classes: the Task's classes, one type throughout.
        train_counts: ``(C,)`` training rows per class, or None (written as -1: not recorded).
    """
    counts = np.full(len(classes), -1, dtype=np.int64) if train_counts is None else np.asarray(train_counts)
    table = pa.table({"label": _label_array(classes), "train_count": pa.array(counts, type=pa.int64())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data = sink.getvalue()
    (stage / CLASSES_FILE).write_bytes(data)
    return {"file": CLASSES_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "count": len(classes)}


def _label_array(classes: tuple[Label, ...]) -> pa.Array:
    first = classes[0]
    kind = pa.bool_() if isinstance(first, bool) else pa.int64() if isinstance(first, int) else pa.string()
    return pa.array(classes, type=kind)


def read_class_file(run_dir: Path, record: Any) -> tuple[tuple[Label, ...], np.ndarray | None]:
    """The classes and training counts of ``classes.parquet``, after checking it against ``record``.

    Raises:
        ArtifactError: no valid record, a missing file, a checksum or count that does not match, or unreadable
            Parquet.
    """
    meta_path = run_dir / "labelwise.json"
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str) or record.get("file") != CLASSES_FILE:
        raise ArtifactError(
            f"{str(meta_path)!r} records no valid class file (`classes`: file, bytes, sha256, count), found "
            f"{record!r}; the run is damaged or was edited by hand. Retrain it."
        )
    path = run_dir / CLASSES_FILE
    if not path.is_file():
        raise ArtifactError(f"{str(path)!r} is missing; the run is incomplete. Restore it from a copy, or retrain.")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise ArtifactError(
            f"{str(path)!r} does not match the checksum recorded in labelwise.json ({len(data)} bytes, "
            f"{record.get('bytes')} recorded): the class list was truncated, edited or swapped since training. "
            "Restore the run from a copy, or retrain it."
        )
    try:
        table = pq.read_table(io.BytesIO(data))
        classes = tuple(table.column("label").to_pylist())
        counts = table.column("train_count").to_numpy().astype(np.int64)
    except (pa.ArrowException, KeyError, OSError) as err:
        raise ArtifactError(f"{str(path)!r} cannot be read as a class list ({err}); the run is damaged.") from err
    if len(classes) != record.get("count"):
        raise ArtifactError(
            f"{str(path)!r} holds {len(classes)} classes, labelwise.json records {record.get('count')!r}; "
            "the run is damaged. Retrain it."
        )
    return classes, None if (counts < 0).any() else counts


def move_class_list(stage: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """``labelwise.json``'s content with a large class list (and its counts) moved into ``classes.parquet``.

    Runs of up to `CLASS_FILE_ABOVE` classes come back unchanged.
    """
    classes = metadata["task"]["classes"]
    if len(classes) <= CLASS_FILE_ABOVE:
        return metadata
    task = {key: value for key, value in metadata["task"].items() if key != "classes"}
    rest = {key: value for key, value in metadata.items() if key not in ("task", "train_counts")}
    record = write_class_file(stage, classes=tuple(classes), train_counts=metadata.get("train_counts"))
    return {"task": task, "classes": record, **rest}


def restore_class_list(run_dir: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """Undo `move_class_list` on loaded metadata: classes back in the Task entry, counts under ``train_counts``."""
    if "classes" not in metadata:
        return metadata
    classes, counts = read_class_file(run_dir, metadata["classes"])
    task = metadata.get("task")
    if not isinstance(task, dict):
        raise ArtifactError(f"{str(run_dir / 'labelwise.json')!r} holds no Task entry; the run is damaged.")
    rest = {key: value for key, value in metadata.items() if key not in ("classes", "task")}
    counts_entry = {} if counts is None else {"train_counts": counts.tolist()}
    return {"task": {**task, "classes": list(classes)}, **counts_entry, **rest}
