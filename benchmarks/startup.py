"""Start-up of the command line: each `labelwise ... --help`, beside `python -c pass` and `import torch` in the same
run (median wall time of several runs, and the peak resident memory of one).

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

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
    args = parser.parse_args()
    print("| command | median wall s | peak RSS MB |\n|---|---|---|")
    for name, argv in BASELINES.items():
        wall, mb = measure(argv, args.runs)
        print(f"| {name} (baseline) | {wall:.3f} | {mb:.0f} |")
    for command in COMMANDS:
        argv = [sys.executable, "-m", "labelwise", *([command] if command else []), "--help"]
        wall, mb = measure(argv, args.runs)
        print(f"| labelwise {command + ' ' if command else ''}--help | {wall:.3f} | {mb:.0f} |")


if __name__ == "__main__":
    main()
