"""Two labelwise versions through the same CLI commands on tables neither was tuned on: do they predict the same?

Not part of the test suite. A refactor that must not change what the models learn (issue 14's reshape) is checked
with it against the commit before it::

    git worktree add /tmp/before 0d4eb8f
    python benchmarks/parity_sweep.py --before /tmp/before/src --after src

Each case runs ``labelwise train`` (4 epochs) then ``labelwise predict`` on the training table, once per version,
and prints whether the columns and predictions agree and the largest probability difference.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn.datasets as ds

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--before", required=True, help="src folder of the first labelwise version")
parser.add_argument("--after", default="src", help="src folder of the second (default: this checkout's)")
args = parser.parse_args()
root = Path(tempfile.mkdtemp(prefix="parity-"))
rng = np.random.default_rng(7)
w = ds.load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
w["cultivar"] = w["cultivar"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
w.to_csv(root / "wine.csv", index=False)
d = ds.load_diabetes(as_frame=True).frame
d["sex"] = np.where(d["sex"] > 0, "m", "f")
d["progressed"] = np.where(d.pop("target") > 140, "yes", "no")
d.loc[rng.choice(len(d), 30, replace=False), "bmi"] = np.nan
d.to_csv(root / "diabetes.csv", index=False)
linnerud = ds.load_linnerud(as_frame=True)
x = pd.concat([linnerud.data] * 8, ignore_index=True) + rng.normal(0, 1, (160, 3))
tags = [
    " ".join(t for t, on in (("heavy", r[0] > 180), ("fast", r[2] < 55)) if on)
    for r in pd.concat([linnerud.target] * 8, ignore_index=True).to_numpy()
]
x.assign(tags=tags).to_csv(root / "linnerud.csv", index=False)
b = ds.load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 5, 10, 20, 30]].rename(columns={"target": "benign"})
b.to_parquet(root / "cancer.parquet")
cases = [
    ("wine", ["wine.csv", "--target", "cultivar"]),
    ("diabetes", ["diabetes.csv", "--target", "progressed", "--metric", "mcc"]),
    ("linnerud", ["linnerud.csv", "--target", "tags"]),
    ("cancer-stream", ["cancer.parquet", "--target", "benign", "--stream", "on"]),
    ("wine-abstain", ["wine.csv", "--target", "cultivar", "--allow-none", "energy"]),
]
for name, (data, *opts) in cases:
    outs = {}
    for version, src in (("before", args.before), ("after", args.after)):
        env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
        run = root / f"{name}-{version}"
        cmd = [
            sys.executable,
            "-m",
            "labelwise",
            "train",
            str(root / data),
            *opts,
            "--epochs",
            "4",
            "--out",
            str(run),
            "--quiet",
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (name, version, done.stderr[-2000:])
        pred = subprocess.run(
            [
                sys.executable,
                "-m",
                "labelwise",
                "predict",
                str(run),
                str(root / data),
                "--out",
                str(root / f"{name}-{version}.csv"),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert pred.returncode == 0, pred.stderr
        outs[version] = pd.read_csv(root / f"{name}-{version}.csv")
    a, b2 = outs["before"], outs["after"]
    same_cols = list(a.columns) == list(b2.columns)
    num = [c for c in a.columns if c.startswith("p:") or c == "unknown_score"]
    diff = float(np.abs(a[num].to_numpy() - b2[num].to_numpy()).max()) if num and same_cols else float("nan")
    same_pred = same_cols and (a["prediction"].fillna("") == b2["prediction"].fillna("")).all()
    print(
        f"{name:14s} rows {len(a):4d}  columns same {same_cols}  predictions same {same_pred}  max |dp| {diff:.2e}",
        flush=True,
    )
