"""Large vocabularies: seconds to infer, build, encode, decode, save and load 10^5 and 10^6 classes.

Not part of the test suite. For N rows holding about N distinct labels (N = 10^5 and 10^6 by default; labels
``"c123456"`` or ints, drawn uniformly from N values, so about 63% of them occur) it times, in one process:

- ``infer``: `infer_task` on the N labels (reading, checks, the sorted class list);
- ``Task()``: `Task(kind="multiclass", classes=...)` from the inferred classes (what loading a run does);
- ``encode``: `Task.encode` of the N labels; ``decode``: `Task.decode` of the N encoded targets;
- ``save``/``load``: the class list written to and read back from ``classes.parquet`` (with its checksum),
  and the bytes of the file next to the bytes of the same list as JSON.

Then a multilabel table of ``--ml-rows`` rows with 3 labels each out of 10^5 (delimited strings): infer, encode (a
dense (rows, 10^5) float32 target, inherent to the multilabel design) and decode.

Usage::

    python benchmarks/vocabulary.py                  # 10^5 and 10^6, strings and ints
    python benchmarks/vocabulary.py --sizes 100000   # one size

To compare with another checkout, run it with ``PYTHONPATH=<checkout>/src``; the save/load rows need
``labelwise._class_file`` and are skipped where it does not exist. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labelwise.task import Task, infer_task


def _timed(results: dict[str, float], name: str, step: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    out = step()
    results[name] = time.perf_counter() - start
    return out


def _single(size: int, kind: str) -> dict[str, float]:
    ids = np.random.default_rng(0).integers(0, size, size)
    labels: list[Any] = [f"c{i}" for i in ids] if kind == "str" else ids.tolist()
    results: dict[str, float] = {}
    task = _timed(results, "infer", lambda: infer_task(labels))
    _timed(results, "Task()", lambda: Task(kind="multiclass", classes=task.classes))
    targets = _timed(results, "encode", lambda: task.encode(labels))
    decoded = _timed(results, "decode", lambda: task.decode(targets))
    assert decoded == labels  # noqa: S101 - the round trip is exact
    results |= _class_file(task)
    results["classes"] = task.num_classes
    return results


def _class_file(task: Task) -> dict[str, float]:
    try:
        from labelwise._class_file import read_class_file, write_class_file
    except ImportError:
        return {}
    results: dict[str, float] = {}
    counts = np.ones(task.num_classes, dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        record = _timed(results, "save", lambda: write_class_file(folder, classes=task.classes, train_counts=counts))
        classes, _ = _timed(results, "load", lambda: read_class_file(folder, record))
        _timed(results, "load+Task()", lambda: Task(kind="multiclass", classes=read_class_file(folder, record)[0]))
    assert classes == task.classes  # noqa: S101
    results["file MB"] = record["bytes"] / 1e6
    results["json MB"] = len(json.dumps(list(task.classes))) / 1e6
    return results


def _multilabel(rows: int, num_labels: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    picks = rng.integers(0, num_labels, (rows, 3))
    labels = [" ".join(f"l{j}" for j in row) for row in picks]
    labels[0] = " ".join(f"l{j}" for j in range(num_labels))  # every label occurs once, so C = num_labels
    results: dict[str, float] = {}
    task = _timed(results, "infer", lambda: infer_task(labels))
    targets = _timed(results, "encode", lambda: task.encode(labels))
    _timed(results, "decode", lambda: task.decode(targets > 0.5))
    results["classes"] = task.num_classes
    return results


def main() -> None:
    """Run the benchmark and print one row per case."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ml-rows", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for size in args.sizes:
        for kind in ("str", "int"):
            print(f"N={size:>9,} {kind:<3} " + _format(_single(size, kind)), flush=True)
    print(f"multilabel rows={args.ml_rows} " + _format(_multilabel(args.ml_rows, 100_000)), flush=True)


def _format(results: dict[str, float]) -> str:
    return "  ".join(
        f"{name} {value:.2f}" if name != "classes" else f"C={int(value):,}" for name, value in results.items()
    )


if __name__ == "__main__":
    main()
