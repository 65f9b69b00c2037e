"""Memory of a streamed training run on a 10-million-row Parquet table, against an in-memory run on 1 million rows.

Writes a learnable table (20 float32 features, an int label of 20 classes) under /tmp in pieces (never the whole
table in memory), then trains in a fresh process per mode and samples its resident memory (VmRSS) every 0.5 s:

    python benchmarks/stream_memory.py                          # 10M rows streamed, 1M rows in memory
    python benchmarks/stream_memory.py --rows 2000000 --budget 60

Each mode trains one epoch (or until ``--budget`` seconds). Printed per mode: rows trained, rows/s (training only),
peak RSS, RSS after the first 1M training rows (streamed), and the run's validation accuracy. The machine may be
shared: timings are noisy, memory is not. The generated files stay in ``--dir`` (delete them afterwards).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

_FEATURES, _CLASSES, _PIECE = 20, 20, 500_000


def _write_table(folder: Path, rows: int, *, seed: int = 0) -> None:
    """``rows`` rows in files of 500k rows (row groups of 100k); labels are the argmax of a fixed linear map."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.parquet"))) == -(-rows // _PIECE):
        return  # written by an earlier run
    weights = np.random.default_rng(seed).normal(size=(_FEATURES, _CLASSES)).astype(np.float32)
    for index, start in enumerate(range(0, rows, _PIECE)):
        rng = np.random.default_rng([seed, index])
        x = rng.normal(size=(min(_PIECE, rows - start), _FEATURES)).astype(np.float32)
        noisy = x @ weights + rng.normal(scale=0.5, size=(len(x), _CLASSES)).astype(np.float32)
        columns = {f"f{i}": x[:, i] for i in range(_FEATURES)} | {"label": noisy.argmax(axis=1).astype(np.int64)}
        pq.write_table(pa.table(columns), folder / f"part-{index:04d}.parquet", row_group_size=100_000)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _train(folder: Path, *, stream: str, budget: float, batch_size: int | None) -> dict[str, object]:
    """Run in the child process: train, sampling RSS and the rows the stream has yielded."""
    import labelwise
    from labelwise.data import streaming
    from labelwise.train import TrainConfig

    yielded = [0]
    original = streaming.ParquetStream._blocks

    def counting(self, rows, *, limit, generator):  # type: ignore[no-untyped-def]
        for inputs, targets in original(self, rows, limit=limit, generator=generator):
            yielded[0] += len(targets)
            yield inputs, targets

    streaming.ParquetStream._blocks = counting  # type: ignore[method-assign]
    samples: list[tuple[float, float, int]] = []
    done = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.perf_counter() - start, _rss_mb(), yielded[0]))

    threading.Thread(target=sample, daemon=True).start()
    config = TrainConfig(epochs=1, time_budget=budget, batch_size=batch_size)
    clf = labelwise.fit(folder, stream=stream, config=config, progress=False)
    done.set()
    training = clf.info["training"]
    trained = [s for s in samples if s[2] > 0]
    rate = (trained[-1][2] - trained[0][2]) / max(trained[-1][0] - trained[0][0], 1e-9) if len(trained) > 1 else None
    after_1m = [s[1] for s in samples if s[2] >= 1_000_000]
    # While the stream trains (rows still rising): the first sample against the largest; the end adds calibration.
    last_rise = max((i for i in range(1, len(samples)) if samples[i][2] > samples[i - 1][2]), default=0)
    during = [s[1] for s in samples[: last_rise + 1] if s[2] > 0]
    return {
        "stream": stream,
        "seconds": round(time.perf_counter() - start, 1),
        "rows_trained": yielded[0] or training["num_train"],
        "train_rows_per_s": round(rate) if rate else None,
        "peak_rss_mb": round(max(s[1] for s in samples), 1) if samples else None,
        "rss_after_1m_rows_mb": round(after_1m[0], 1) if after_1m else None,
        "rss_first_training_rows_mb": round(during[0], 1) if during else None,
        "peak_rss_while_training_mb": round(max(during), 1) if during else None,
        "rss_at_end_mb": round(_rss_mb(), 1),
        "valid_accuracy": clf.info["metrics"]["valid"].get("accuracy"),
        "num_valid": training["num_valid"],
        "samples": [[round(t, 1), round(m, 1), n] for t, m, n in samples[:: max(1, len(samples) // 40)]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the streamed table")
    parser.add_argument("--memory-rows", type=int, default=1_000_000, help="rows of the in-memory comparison")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds of training per run")
    parser.add_argument("--batch-size", type=int, default=None, help="rows per step (default: labelwise's choice)")
    parser.add_argument("--modes", nargs="+", choices=("on", "off"), default=["on", "off"], help="which runs")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/labelwise-stream-bench"))
    parser.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_train(args.data, stream=args.child, budget=args.budget, batch_size=args.batch_size)))
        return
    big, small = args.dir / f"rows-{args.rows}", args.dir / f"rows-{args.memory_rows}"
    started = time.perf_counter()
    _write_table(big, args.rows)
    _write_table(small, args.memory_rows)
    print(f"tables written in {time.perf_counter() - started:.0f} s under {args.dir}", file=sys.stderr)
    for stream, folder in (("on", big), ("off", small)):
        if stream not in args.modes:
            continue
        command = [sys.executable, __file__, "--child", stream, "--data", str(folder), "--budget", str(args.budget)]
        command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        print(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
