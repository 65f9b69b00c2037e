"""The image defaults across image sets: ``labelwise train`` as a user runs it, timed, then scored on the test split.

Each run is a separate ``python -m labelwise train`` process (defaults only: the image recipe of
`labelwise.models.image_recipe` chooses network, batch, epochs and augmentation), timed from start to exit, then
``labelwise evaluate --json`` on the set's test table (``benchmarks/image_time.py`` splits one run's time into its
stages). ``--baseline SRC`` runs a second source tree (e.g. ``git archive`` of
an earlier commit, unpacked) on the same sets, alternating with this one run by run so that load from other
processes hits both alike; the load average is printed beside every run. The sets are those of
``benchmarks/image_sets.py`` plus the ``digits`` and ``multidigit`` demos; ``openset`` is measured by
``labelwise demo openset``.

    python benchmarks/image_defaults.py                                  # every set, this tree's src
    python benchmarks/image_defaults.py --sets digits multidigit64 --baseline /tmp/base/src
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from image_sets import DEMOS, SETS, make_set  # noqa: E402

_HERE_SRC = Path(__file__).resolve().parents[1] / "src"


def _labelwise(src: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([sys.executable, "-m", "labelwise", *args], env=env, capture_output=True, text=True)


def run_one(name: str, info: dict[str, object], *, src: Path, out: Path) -> dict[str, object]:
    """Train with the defaults in a fresh process, evaluate on the test table; the headline, seconds and load."""
    shutil.rmtree(out, ignore_errors=True)
    args = [str(info["train"]), "--out", str(out), "--quiet"]
    if info["image_col"]:
        args += ["--target", str(info["target"]), "--image-col", str(info["image_col"])]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    trained = _labelwise(src, "train", *args)
    wall = time.perf_counter() - start
    if trained.returncode != 0:
        raise RuntimeError(f"{name}: labelwise train failed:\n{trained.stderr[-2000:]}")
    evaluate = ["evaluate", str(out), str(info["test"]), "--json"]
    scored = _labelwise(src, *(evaluate + (["--target", str(info["target"])] if info["image_col"] else [])))
    metrics = json.loads(scored.stdout)
    record = json.loads((out / "labelwise.json").read_text())["training"]
    return {
        "set": name,
        "src": str(src),
        str(info["headline"]): round(float(metrics[str(info["headline"])]), 4),
        "train_wall_s": round(wall, 1),
        "epochs": record["epochs_run"],
        "recipe": record.get("image_recipe", {}).get("why", "(none)"),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=[*DEMOS, *SETS], choices=[*DEMOS, *SETS])
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "labelwise-image-sets"))
    parser.add_argument("--baseline", type=Path, default=None, help="a second src folder to run alternately")
    parser.add_argument("--json", type=Path, default=None, help="also append each row to this JSON-lines file")
    args = parser.parse_args()
    root = Path(args.root)
    trees = [_HERE_SRC] + ([args.baseline.resolve()] if args.baseline else [])
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            info = make_set(name, root)
            for i, src in enumerate(trees):
                row = run_one(name, info, src=src, out=Path(tmp) / f"{name}-{i}")
                print(json.dumps(row), flush=True)
                if args.json:
                    with args.json.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
