"""Start-up of the command line: each `labelwise ... --help`, `labelwise inspect` on a 1,000-row table, and `labelwise
predict` on those rows with a small table model (torch backend, and `--backend onnx`), beside `python -c pass` and
`import torch` in the same run (median wall time of several runs, and the peak resident memory).

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = ("", "inspect", "train", "evaluate", "predict", "export", "check", "serve", "demo")
BASELINES = {"python -c pass": [sys.executable, "-c", "pass"], "import torch": [sys.executable, "-c", "import torch"]}


def measure(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds over ``runs`` runs of ``argv``, and the peak resident MB of the last."""
    times, peak = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of all children
        times.append(time.perf_counter() - start)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen, or it warns at exit
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed (status {status})")
        peak = max(peak, usage.ru_maxrss)
    return statistics.median(times), peak / 1024  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--make-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_run:
        _small_run(Path(args.make_run))
        return
    print("| command | median wall s | peak RSS MB |\n|---|---|---|")
    for name, argv in BASELINES.items():
        wall, mb = measure(argv, args.runs)
        print(f"| {name} (baseline) | {wall:.3f} | {mb:.0f} |")
    for command in COMMANDS:
        argv = [sys.executable, "-m", "labelwise", *([command] if command else []), "--help"]
        wall, mb = measure(argv, args.runs)
        print(f"| labelwise {command + ' ' if command else ''}--help | {wall:.3f} | {mb:.0f} |")
    with tempfile.TemporaryDirectory() as folder:
        # Trained in a child process: a child forked from a parent that had imported torch inherits its peak RSS
        # (Linux keeps the high-water mark across fork and exec), which inflated every row measured after it.
        subprocess.run([sys.executable, __file__, "--make-run", folder], check=True)
        run, data = Path(folder) / "run", Path(folder) / "data.csv"
        lw = [sys.executable, "-m", "labelwise"]
        predict = [*lw, "predict", str(run), str(data), "--out", str(Path(folder) / "p.csv")]
        for name, argv in {
            "labelwise inspect (1,000 rows, table)": [*lw, "inspect", str(data), "--target", "label"],
            "labelwise predict (1,000 rows, table model)": predict,
            "labelwise predict --backend onnx (same)": [*predict, "--backend", "onnx"],
        }.items():
            wall, mb = measure(argv, args.runs)
            print(f"| {name} | {wall:.3f} | {mb:.0f} |")


def _small_run(folder: Path) -> tuple[Path, Path]:
    """A run trained for one epoch on 1,000 rows of numbers and a category, and the table to predict on."""
    import numpy as np
    import pandas as pd

    import labelwise

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=1000) for i in range(8)})
    frame["color"] = rng.choice(["red", "green", "blue"], 1000)
    frame["label"] = np.where(frame["x0"] + rng.normal(size=1000) > 0, "yes", "no")
    frame.to_csv(folder / "data.csv", index=False)
    clf = labelwise.fit(folder / "data.csv", out=folder / "run", progress=False, epochs=1)
    from labelwise.export import export_onnx

    export_onnx(clf, folder / "run" / "model.onnx")
    return folder / "run", folder / "data.csv"


if __name__ == "__main__":
    main()
