"""Wall time of `labelwise train` on a table of 1,000 and of 20,000 rows, and where it goes.

Each size is a binary table (scikit-learn's ``make_classification``, 20 numeric columns, 8 informative). In the same
run, beside each `labelwise train` (zero-config: 5 members cross-fitted, calibrated, thresholds tuned, saved):

- ``import torch`` alone, and ``import torch`` plus torch.optim's first step (which imports ``torch._dynamo``);
- one hand-written PyTorch loop over the same MLP (AdamW, batch size and epochs as labelwise picks them, one
  network, no validation), a process of its own;
- scikit-learn's HistGradientBoostingClassifier fitted in a process of its own (one OpenMP thread: on a shared
  2-core machine two threads spin-wait for each other).

The `labelwise train` row is split into its imports (``python -X importtime``: torch, torch._dynamo, scikit-learn,
pandas) and the stages it prints (members training side by side; the rest is reading, calibration,
thresholds and saving). Medians of ``--runs`` runs; the machine's load average is printed with them.

    python benchmarks/table_fit_time.py [--runs 3] [--rows 1000 20000]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BARE_LOOP = """
import sys, time, torch, pandas as pd, numpy as np
from torch import nn
frame = pd.read_csv(sys.argv[1]); y = torch.tensor((frame.pop("label") == "yes").to_numpy(), dtype=torch.float32)
x = torch.tensor(((frame - frame.mean()) / frame.std()).to_numpy(), dtype=torch.float32)
torch.set_num_threads(1)
net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.BatchNorm1d(256), nn.GELU(), nn.Dropout(0.1), nn.Linear(256, 1))
opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
batch = min(1024, max(32, 2 ** round(np.log2(len(x) * 0.8 / 20))))
steps = len(x) // batch
for epoch in range(max(10, min(100, -(-1000 // steps)))):
    for rows in torch.randperm(len(x)).split(batch):
        if len(rows) < 2: continue
        loss = nn.functional.binary_cross_entropy_with_logits(net(x[rows])[:, 0], y[rows])
        opt.zero_grad(); loss.backward(); opt.step()
"""
_HGB = """
import sys, pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
frame = pd.read_csv(sys.argv[1]); y = frame.pop("label")
HistGradientBoostingClassifier(random_state=0).fit(frame, y)
"""
_TORCH_OPTIM = "import torch; p = torch.zeros(1, requires_grad=True); p.sum().backward(); torch.optim.AdamW([p]).step()"
_IMPORT_GROUPS = ("torch._dynamo", "torch", "sklearn", "pandas")


def _table(rows: int, path: Path) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(rows, 20, n_informative=8, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(20)])
    frame["label"] = np.where(y == 1, "yes", "no")
    frame.to_csv(path, index=False)


def _wall(argv: list[str], **kwargs: object) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start, done.stderr


def _imports(stderr: str) -> dict[str, float]:
    """Seconds each library took to import, from a ``-X importtime`` log: the cumulative time of the line that
    names it (each is imported once, wherever that happens)."""
    seconds = dict.fromkeys(_IMPORT_GROUPS, 0.0)
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+(\S+)$", line)
        if match and match.group(2) in seconds:
            seconds[match.group(2)] = int(match.group(1)) / 1e6
    return seconds


def _labelwise(data: Path, out: Path) -> tuple[float, float, dict[str, float]]:
    argv = [sys.executable, "-m", "labelwise", "train", str(data), "--target", "label", "--out", str(out)]
    wall, stderr = _wall(argv)
    members = float(re.search(r"members trained side by side in ([\d.]+) s", stderr).group(1))  # type: ignore[union-attr]
    _, importtime = _wall([sys.executable, "-X", "importtime", *argv[1:-1], str(out) + "-imports"])
    return wall, members, _imports(importtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 20000])
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            data = Path(folder) / f"t{rows}.csv"
            _table(rows, data)
            runs = [_labelwise(data, Path(folder) / f"run{rows}-{i}") for i in range(args.runs)]
            baselines = {
                "import torch": _wall([sys.executable, "-c", "import torch"])[0],
                "import torch + first torch.optim step": _wall([sys.executable, "-c", _TORCH_OPTIM])[0],
                "bare PyTorch loop, one MLP": _wall([sys.executable, "-c", _BARE_LOOP, str(data)])[0],
                "scikit-learn HistGradientBoosting, one OpenMP thread": _wall(
                    [sys.executable, "-c", _HGB, str(data)], env={**os.environ, "OMP_NUM_THREADS": "1"}
                )[0],
            }
            wall = statistics.median(r[0] for r in runs)
            members = statistics.median(r[1] for r in runs)
            imports = {key: statistics.median(r[2][key] for r in runs) for key in runs[0][2]}
            print(f"\n## {rows:,} rows\n\n| what | wall s |\n|---|---:|")
            print(f"| **labelwise train** (process) | **{wall:.2f}** |")
            for key, value in imports.items():
                print(f"| - import {key} | {value:.2f} |")
            # The members' time holds torch._dynamo's import: torch.optim imports it on the first optimizer.
            print(f"| - 5 members trained side by side (less that import) | {members - imports['torch._dynamo']:.2f} |")
            print(f"| - the rest (reading, preparing, calibrating, tuning, saving) | "
                  f"{wall - members - sum(imports.values()) + imports['torch._dynamo']:.2f} |")  # fmt: skip
            for name, seconds in baselines.items():
                print(f"| {name} (baseline, process) | {seconds:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
