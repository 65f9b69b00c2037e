"""labelwise's zero-config table model against what a practitioner runs first, through the CLI as a user runs it.

Peers in the same run, on the same seeded 75/25 splits (test rows never seen by any choice):
- ``hgb``: scikit-learn's ``HistGradientBoostingClassifier()`` with its defaults (categorical columns as pandas
  categories; multilabel: one per label);
- ``lr``: ``LogisticRegressionCV`` (C by 5-fold cross-validation) on standardized numbers and one-hot categories
  (multilabel: one per label);
- ``labelwise``: ``labelwise train train.csv --target T`` then ``labelwise predict``; its wall time is the whole
  ``train`` process (Python and torch start-up included).

Every method's metrics are computed here from its test probabilities and decisions with scikit-learn. Binary:
ROC-AUC, and F1 of labelwise's positive class at each model's own decision (labelwise: its tuned threshold; peers:
0.5) and at 0.5; multiclass: accuracy and macro-F1; multilabel: micro-F1 at the own decision and at 0.5, and mAP.

    python benchmarks/tables.py                    # the tuning tables, 3 seeds
    python benchmarks/tables.py --held-out         # tables the defaults were not chosen on
    python benchmarks/tables.py --only phishing --seeds 1 --labelwise-args --folds 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import table_data
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer, OneHotEncoder, StandardScaler

SRC = Path(__file__).resolve().parents[1] / "src"


def split(table: table_data.Table, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = table.frame[table.target]
    stratify = None if table.kind == "multilabel" else labels
    return train_test_split(table.frame, test_size=0.25, random_state=seed, stratify=stratify)  # type: ignore[no-any-return]


def run_labelwise(table: table_data.Table, train: pd.DataFrame, test: pd.DataFrame, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train.to_csv(folder / "train.csv", index=False)
        test.drop(columns=[table.target]).to_csv(folder / "test.csv", index=False)
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        cmd = [sys.executable, "-m", "labelwise", "train", str(folder / "train.csv"), "--target", table.target]
        started = time.perf_counter()
        subprocess.run([*cmd, "--out", str(folder / "run"), "--quiet", *extra], check=True, env=env,
                       capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - started
        subprocess.run(
            [sys.executable, "-m", "labelwise", "predict", str(folder / "run"), str(folder / "test.csv"), "--out",
             str(folder / "pred.csv")], check=True, env=env, capture_output=True,
        )  # fmt: skip
        pred = pd.read_csv(folder / "pred.csv", keep_default_na=False, dtype=str)
        task = json.loads((folder / "run" / "labelwise.json").read_text())["task"]
    classes = [str(c) for c in task["classes"]]
    probs = pred[[f"p:{c}" for c in classes]].astype(float).to_numpy()
    decided = pred["prediction"].tolist()
    return {"classes": classes, "probs": probs, "decided": decided, "seconds": seconds}


def _features(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    x = frame.drop(columns=[target])
    for column in x.columns:
        if x[column].dtype == object or str(x[column].dtype) in ("str", "string"):
            x[column] = x[column].astype("category")
    return x


def run_peer(name: str, table: table_data.Table, train: pd.DataFrame, test: pd.DataFrame, classes: list[str]) -> dict:
    x_train, x_test = _features(train, table.target), _features(test, table.target)
    categorical = [c for c in x_train.columns if str(x_train[c].dtype) == "category"]
    if name == "hgb":
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    else:
        numeric = [c for c in x_train.columns if c not in categorical]
        prep = make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (OneHotEncoder(handle_unknown="ignore"), categorical),
        )
        model = make_pipeline(prep, LogisticRegressionCV(Cs=10, max_iter=2000))
    started = time.perf_counter()
    if table.kind == "multilabel":
        binarizer = MultiLabelBinarizer(classes=classes)
        y = binarizer.fit_transform([s.split() for s in train[table.target].astype(str)])
        model = MultiOutputClassifier(model).fit(x_train, y)
        probs = np.stack([p[:, 1] for p in model.predict_proba(x_test)], axis=1)
        decided = [" ".join(c for c, on in zip(classes, row >= 0.5, strict=True) if on) for row in probs]
    else:
        model.fit(x_train, train[table.target].astype(str))
        order = [list(model.classes_).index(c) for c in classes]
        probs = model.predict_proba(x_test)[:, order]
        decided = [classes[i] for i in probs.argmax(axis=1)]
    return {"classes": classes, "probs": probs, "decided": decided, "seconds": time.perf_counter() - started}


def score(table: table_data.Table, test: pd.DataFrame, out: dict, positive: str | None) -> dict[str, float]:
    classes, probs = out["classes"], out["probs"]
    truth = test[table.target].astype(str).tolist()
    if table.kind == "binary":
        pos = classes.index(positive)
        y = np.array([t == positive for t in truth])
        return {
            "roc_auc": roc_auc_score(y, probs[:, pos]),
            "f1": f1_score(y, np.array([d == positive for d in out["decided"]])),
            "f1@0.5": f1_score(y, probs[:, pos] >= 0.5),
        }
    if table.kind == "multiclass":
        return {
            "accuracy": accuracy_score(truth, out["decided"]),
            "macro_f1": f1_score(truth, out["decided"], average="macro"),
        }
    binarizer = MultiLabelBinarizer(classes=classes)
    y = binarizer.fit_transform([t.split() for t in truth])
    decided = binarizer.transform([d.split() for d in out["decided"]])
    present = y.sum(axis=0) > 0
    return {
        "micro_f1": f1_score(y, decided, average="micro"),
        "micro_f1@0.5": f1_score(y, probs >= 0.5, average="micro"),
        "mAP": average_precision_score(y[:, present], probs[:, present], average="macro"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", action="store_true", help="the tables the defaults were not chosen on")
    parser.add_argument("--only", nargs="*", default=None, help="table names")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--peers", nargs="*", default=["hgb", "lr"])
    parser.add_argument("--labelwise-args", nargs=argparse.REMAINDER, default=[])
    parser.add_argument("--json", type=Path, default=None, help="also write every run's scores here")
    args = parser.parse_args()
    rows = []
    for load in table_data.HELD_OUT if args.held_out else table_data.TUNING:
        table = load()
        if args.only and table.name not in args.only:
            continue
        for seed in range(args.seeds):
            train, test = split(table, seed)
            lw = run_labelwise(table, train, test, args.labelwise_args)
            positive = _positive(table, lw)
            rows.append({"table": table.name, "seed": seed, "method": "labelwise", "seconds": lw["seconds"],
                         **score(table, test, lw, positive)})  # fmt: skip
            for peer in args.peers:
                out = run_peer(peer, table, train, test, lw["classes"])
                rows.append({"table": table.name, "seed": seed, "method": peer, "seconds": out["seconds"],
                             **score(table, test, out, positive)})  # fmt: skip
            print(pd.DataFrame(rows[-1 - len(args.peers) :]).to_string(index=False), flush=True)
    frame = pd.DataFrame(rows)
    if args.json:
        args.json.write_text(frame.to_json(orient="records", indent=1))
    means = frame.drop(columns="seed").groupby(["table", "method"], sort=False).mean().round(4).reset_index()
    print("| " + " | ".join(means.columns) + " |\n|" + "---|" * len(means.columns))
    for row in means.itertuples(index=False):
        print("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")


def _positive(table: table_data.Table, out: dict) -> str | None:
    """labelwise's positive class (the second of a binary Task's classes), so every method's F1 is about it."""
    return out["classes"][1] if table.kind == "binary" else None


if __name__ == "__main__":
    main()
