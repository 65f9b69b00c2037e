"""Issue 16 item 4: are labelwise's out-of-fold probabilities as good at finding planted label errors as a
scikit-learn model's, with the same cleanlab ranking on top?

For each data set and seed, 5 % of the rows get a wrong label: single-label rows another class drawn uniformly,
multilabel rows (Yeast) one present label swapped for an absent one. Then the likely label errors are ranked three
ways, all by `labelwise.label_issues.find_label_issues` (cleanlab's ``find_label_issues``, ``prune_by_noise_rate``,
ranked by self-confidence) on out-of-fold probabilities from 5 stratified folds:

- ``labelwise``: ``labelwise.fit(..., folds=5)``, the default model, ``clf.label_issues()``;
- ``sklearn-hgb``: ``cross_val_predict(HistGradientBoostingClassifier(), method="predict_proba")``
  (multilabel: one per label, ``OneVsRestClassifier``);
- ``sklearn-lr``: the same with ``StandardScaler`` + ``LogisticRegression(max_iter=2000)``.

With k the number of planted errors, precision is the share of planted errors among the first k issues (among all of
them when cleanlab flags fewer than k) and recall the share of planted errors among those first k. The original
labels are taken as right: a real error in the data that is found counts against precision, for every method alike.

Data (all shipped inside installed packages): scikit-learn's breast cancer (binary, 569 rows), wine (3 classes,
178 rows) and digits as a 64-column table (10 classes, 1,797 rows); river's ImageSegments (7 classes, 2,310 rows)
and Yeast (multilabel, 14 labels, 2,417 rows). Seeds 0-2: each seed draws its own errors, folds and initial weights.

Usage: ``python benchmarks/label_issues.py [--seeds 3] [--only NAME ...]`` (about 10 minutes on one thread); writes
``benchmarks/results/label_issues.md`` and prints it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import river.datasets
import sklearn.datasets
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import labelwise
from labelwise.label_issues import find_label_issues
from labelwise.task import Task

NOISE = 0.05
FOLDS = 5
RESULTS = Path(__file__).parent / "results" / "label_issues.md"


@dataclass(frozen=True)
class Table:
    """Features ``x`` and labels: ``y`` single-label strings, or ``y`` an (N, C) 0/1 matrix for multilabel."""

    name: str
    x: pd.DataFrame
    y: np.ndarray
    classes: tuple[str, ...]
    multilabel: bool = False


def _sklearn_table(name: str, loader: Callable[..., object]) -> Table:
    bunch = loader(as_frame=True)
    names = np.asarray([str(n).replace(" ", "_") for n in bunch.target_names])  # type: ignore[attr-defined]
    x = bunch.data  # type: ignore[attr-defined]
    x.columns = [str(c).replace(" ", "_") for c in x.columns]
    return Table(name, x, names[bunch.target.to_numpy()], tuple(names))  # type: ignore[attr-defined]


def _river_table(name: str, dataset: object, *, multilabel: bool) -> Table:
    rows = list(dataset)  # type: ignore[call-overload]
    x = pd.DataFrame([features for features, _ in rows]).astype(float)
    x.columns = [str(c).replace(" ", "_") for c in x.columns]
    if multilabel:
        labels = pd.DataFrame([target for _, target in rows]).astype(int)
        return Table(name, x, labels.to_numpy(), tuple(labels.columns), multilabel=True)
    y = np.asarray([str(target).replace(" ", "_") for _, target in rows])
    return Table(name, x, y, tuple(sorted(set(y))))


def tables() -> dict[str, Callable[[], Table]]:
    return {
        "breast_cancer": lambda: _sklearn_table("breast_cancer", sklearn.datasets.load_breast_cancer),
        "wine": lambda: _sklearn_table("wine", sklearn.datasets.load_wine),
        "digits": lambda: _sklearn_table("digits", sklearn.datasets.load_digits),
        "image_segments": lambda: _river_table("image_segments", river.datasets.ImageSegments(), multilabel=False),
        "yeast": lambda: _river_table("yeast", river.datasets.Yeast(), multilabel=True),
    }


# -- planting errors -----------------------------------------------------------------------------------------------
def corrupt(table: Table, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The noisy labels and the sorted rows whose label was changed (5 % of them)."""
    rng = np.random.default_rng(seed)
    num = round(NOISE * len(table.y))
    rows = np.sort(rng.choice(len(table.y), size=num, replace=False))
    noisy = table.y.copy()
    for row in rows:
        if table.multilabel:
            present, absent = np.flatnonzero(noisy[row] == 1), np.flatnonzero(noisy[row] == 0)
            noisy[row, rng.choice(present)] = 0  # Yeast rows hold at least one label, and none holds all 14
            noisy[row, rng.choice(absent)] = 1
        else:
            noisy[row] = rng.choice([c for c in table.classes if c != noisy[row]])
    return noisy, rows


# -- the three ways to get out-of-fold probabilities ----------------------------------------------------------------
def labelwise_issues(table: Table, noisy: np.ndarray, *, seed: int) -> list[int]:
    frame = table.x.copy()
    if table.multilabel:
        targets = [f"label_{c}" for c in table.classes]
        frame[targets] = noisy
        clf = labelwise.fit(frame, target=targets, folds=FOLDS, seed=seed, progress=False)
    else:
        frame["label"] = noisy
        clf = labelwise.fit(frame, target="label", folds=FOLDS, seed=seed, progress=False)
    return [issue["row"] for issue in clf.label_issues()]


def sklearn_issues(table: Table, noisy: np.ndarray, *, seed: int, model: str) -> list[int]:
    estimator = (
        HistGradientBoostingClassifier(random_state=seed)
        if model == "hgb"
        else make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    )
    if table.multilabel:
        cv: KFold | StratifiedKFold = KFold(FOLDS, shuffle=True, random_state=seed)
        probs = cross_val_predict(OneVsRestClassifier(estimator), table.x, noisy, cv=cv, method="predict_proba")
        labels = [" ".join(table.classes[j] for j in np.flatnonzero(row)) for row in noisy]
        task = Task(kind="multilabel", classes=table.classes, label_sep=" ")
    else:
        cv = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
        probs = cross_val_predict(estimator, table.x, noisy, cv=cv, method="predict_proba")
        labels = list(noisy)
        classes = tuple(sorted(set(noisy)))  # sklearn's column order: the sorted classes
        task = Task(kind="binary" if len(classes) == 2 else "multiclass", classes=classes)
    frame = pd.DataFrame({"row": np.arange(len(noisy)), "label": labels})
    frame = pd.concat([frame, pd.DataFrame(probs, columns=[f"p:{c}" for c in task.classes])], axis=1)
    return [issue["row"] for issue in find_label_issues(frame, task)]


METHODS: dict[str, Callable[[Table, np.ndarray, int], list[int]]] = {
    "labelwise": lambda t, y, s: labelwise_issues(t, y, seed=s),
    "sklearn-hgb": lambda t, y, s: sklearn_issues(t, y, seed=s, model="hgb"),
    "sklearn-lr": lambda t, y, s: sklearn_issues(t, y, seed=s, model="lr"),
}


def score(found: list[int], planted: np.ndarray) -> dict[str, float]:
    top = found[: len(planted)]
    hits = len(set(top) & set(planted.tolist()))
    return {
        "precision": hits / len(top) if top else 0.0,
        "recall": hits / len(planted),
        "flagged": float(len(found)),
    }


def run(names: list[str], seeds: int) -> pd.DataFrame:
    loaders, records = tables(), []
    for name in names:
        table = loaders[name]()
        for seed in range(seeds):
            noisy, planted = corrupt(table, seed=seed)
            for method, find in METHODS.items():
                start = time.perf_counter()
                result = score(find(table, noisy, seed), planted)
                seconds = time.perf_counter() - start
                records.append({"data": name, "seed": seed, "method": method, **result, "seconds": seconds})
                print(f"{name} seed {seed} {method}: {result} in {seconds:.1f}s", flush=True)
    return pd.DataFrame(records)


def markdown(results: pd.DataFrame, tables_info: dict[str, tuple[int, int]]) -> str:
    mean = results.groupby(["data", "method"], sort=False).agg(
        precision=("precision", "mean"),
        precision_sd=("precision", "std"),
        recall=("recall", "mean"),
        flagged=("flagged", "mean"),
        seconds=("seconds", "mean"),
    )
    lines = [
        "# Finding planted label errors (benchmarks/label_issues.py)",
        "",
        f"5 % of labels corrupted; k = number of corrupted rows; precision and recall of the first k issues "
        f"(cleanlab's confident learning, ranked by self-confidence, on {FOLDS}-fold out-of-fold probabilities). "
        f"Mean over seeds {sorted(results['seed'].unique().tolist())} (± sd of precision); `flagged`: rows cleanlab "
        "flags in all; seconds: cross-fitting plus ranking, one thread on a shared 2-core machine.",
        "",
        "| data | rows | k | method | precision@k | recall@k | flagged | seconds |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for (data, method), row in mean.iterrows():
        rows, k = tables_info[str(data)]
        lines.append(
            f"| {data} | {rows:,} | {k} | {method} | {row.precision:.3f} ± {row.precision_sd:.3f} | "
            f"{row.recall:.3f} | {row.flagged:.0f} | {row.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=list(tables()), choices=list(tables()))
    args = parser.parse_args()
    # One thread for torch and for scikit-learn's OpenMP: on a shared 2-core machine, two OpenMP threads spin-wait
    # for each other (HistGradientBoosting's 5 folds on wine took 23 s with 2 threads, 0.6 s with 1).
    torch.set_num_threads(1)
    with threadpool_limits(1):
        results = run(args.only, args.seeds)
    sizes = {name: len(tables()[name]().y) for name in args.only}
    text = markdown(results, {name: (num, round(NOISE * num)) for name, num in sizes.items()})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    results.to_csv(RESULTS.with_suffix(".csv"), index=False)
    print(text)


if __name__ == "__main__":
    main()
