"""labelwise against peers on the same data, side by side in one run (not part of the test suite).

For each embedded demo (made from scikit-learn's bundled datasets) this trains labelwise with its defaults
through the public API and the peers a careful user would reach for, on the same train/validation rows, and
scores all of them on the same untouched test split:

- cancer (binary table): scikit-learn LogisticRegression and HistGradientBoostingClassifier (standardized
  features, default settings, trained on train+valid).
- digits (multiclass images): scikit-learn LogisticRegression on the pixels, and a hand-written PyTorch
  loop (the compact CNN labelwise picks for 32 px images, Adam, 15 epochs, no augmentation, no early stopping).
- multidigit (multilabel images, 32 px) and multidigit64 (the same canvases at 64 px, digits of 32 px; written by
  ``benchmarks/image_sets.py``): scikit-learn one-vs-rest LogisticRegression on the pixels at a 0.5 threshold, and
  the hand-written loop (labelwise's CNN for the image size, BCE, Adam, 10 epochs, 0.5 thresholds).

Usage::

    python benchmarks/peers.py                 # all demos
    python benchmarks/peers.py --demos cancer  # one

Run from the repository root with ``PYTHONPATH=src`` so that it measures this tree's labelwise.

Prints one table: demo, method, headline metric(s), wall seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import labelwise
from labelwise.data.images import ImageSpec, load_images
from labelwise.data.sources import load_source
from labelwise.datasets import make_demo
from labelwise.models import ModelSpec, create_network
from labelwise.models.image_recipe import cnn_options
from labelwise.task import Task, TaskKind, infer_task

sys.path.insert(0, str(Path(__file__).parent))
from image_sets import make_set  # noqa: E402

Row = dict[str, object]


def _timed(fn: Callable[[], dict[str, float]]) -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    scores = fn()
    return scores, time.perf_counter() - start


_KEYS = {
    "cancer": ("roc_auc", "f1", "accuracy"),
    "digits": ("accuracy", "macro_f1"),
    "multidigit": ("micro_f1", "macro_f1", "subset_accuracy"),
}


def _labelwise(demo: labelwise.datasets.Demo) -> dict[str, float]:  # type: ignore[name-defined]
    clf = labelwise.fit(demo.train, target=demo.target, image_col=demo.image_col, progress=False)
    metrics = clf.evaluate(demo.test, target=demo.target)
    return {k: metrics[k] for k in _KEYS[demo.name]}


def bench_cancer(root: Path) -> list[Row]:
    demo = make_demo("cancer", root)
    train, test = pd.read_csv(demo.train), pd.read_csv(demo.test)
    features = [c for c in train.columns if c not in ("diagnosis", "is_valid")]
    y_train, y_test = train["diagnosis"] == "malignant", test["diagnosis"] == "malignant"
    rows: list[Row] = []
    peers = {
        "sklearn LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "sklearn HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
    }
    for name, model in peers.items():

        def run(model=model) -> dict[str, float]:  # noqa: ANN001 - bound loop variable
            model.fit(train[features], y_train)
            proba = model.predict_proba(test[features])[:, 1]
            pred = proba >= 0.5
            return {
                "roc_auc": roc_auc_score(y_test, proba),
                "f1": f1_score(y_test, pred),
                "accuracy": accuracy_score(y_test, pred),
            }

        rows.append({"demo": "cancer", "method": name, **_score(run)})
    rows.append({"demo": "cancer", "method": "labelwise (defaults)", **_score(lambda: _labelwise(demo))})
    return rows


def _pixels(path: Path, spec: ImageSpec) -> tuple[np.ndarray, list[object]]:
    source = load_source(path, for_training=False, target=None)
    folder = load_source(path, for_training=True)
    pixels = load_images(source.image_paths, spec).pixels
    return pixels.numpy().reshape(len(pixels), -1) / 255.0, list(folder.labels)


def bench_digits(root: Path) -> list[Row]:
    demo = make_demo("digits", root)
    spec = ImageSpec(size=32, channels=1, mean=(0.5,), std=(0.5,))
    x_train, y_train = _pixels(demo.train, spec)
    x_test, y_test = _pixels(demo.test, spec)
    rows: list[Row] = []

    def logreg() -> dict[str, float]:
        model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
        pred = model.predict(x_test)
        return {"accuracy": accuracy_score(y_test, pred), "macro_f1": f1_score(y_test, pred, average="macro")}

    rows.append({"demo": "digits", "method": "sklearn LogisticRegression (pixels)", **_score(logreg)})
    rows.append(
        {
            "demo": "digits",
            "method": "plain PyTorch loop (same CNN, Adam, 15 epochs)",
            **_score(lambda: _plain_torch_cnn(x_train, y_train, x_test, y_test)),
        }
    )
    rows.append({"demo": "digits", "method": "labelwise (defaults)", **_score(lambda: _labelwise(demo))})
    return rows


def plain_images(x: np.ndarray, size: int = 32) -> torch.Tensor:
    """Flat 0..1 pixels as (N, 1, size, size) normalised as labelwise does (mean 0.5, std 0.5)."""
    return torch.tensor(x, dtype=torch.float32).reshape(-1, 1, size, size) * 2 - 1


def train_plain_cnn(
    x_train: np.ndarray, y_train: list[object] | pd.Series, *, epochs: int = 15, size: int = 32
) -> tuple[torch.nn.Module, Task]:
    """The plain PyTorch peer: the compact CNN labelwise picks for ``size`` px images, Adam 1e-3, batch 64, no
    augmentation, validation or calibration; cross-entropy, or BCE for multilabel targets."""
    # Importing Lightning (labelwise does) turns on an NVML-based CUDA check that slows every optimizer step on
    # a CPU; a plain PyTorch process would not have it (see benchmarks/overhead.py).
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    torch.manual_seed(0)
    task = infer_task(y_train)
    net = create_network(ModelSpec(backbone="cnn", in_chans=1, image_size=size, options=cnn_options(size)), task)
    xs, ys = plain_images(x_train, size), task.encode(y_train)
    loss = (
        torch.nn.functional.binary_cross_entropy_with_logits
        if task.kind is TaskKind.MULTILABEL
        else torch.nn.functional.cross_entropy
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xs)).split(64):
            opt.zero_grad()
            loss(net(xs[idx]), ys[idx]).backward()
            opt.step()
    return net.eval(), task


def _plain_torch_cnn(
    x_train: np.ndarray, y_train: list[object], x_test: np.ndarray, y_test: list[object]
) -> dict[str, float]:
    net, task = train_plain_cnn(x_train, y_train)
    with torch.no_grad():
        logits = net(plain_images(x_test))
    pred = task.decode(logits.argmax(1))
    return {"accuracy": accuracy_score(y_test, pred), "macro_f1": f1_score(y_test, pred, average="macro")}


def _multilabel_scores(y_test: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "micro_f1": f1_score(y_test, pred, average="micro"),
        "macro_f1": f1_score(y_test, pred, average="macro"),
        "subset_accuracy": accuracy_score(y_test, pred),
    }


def _bench_canvases(name: str, train_csv: Path, test_csv: Path, *, size: int) -> list[Row]:
    """The multidigit canvases at ``size`` px: one-vs-rest LogisticRegression, the plain loop, labelwise."""
    train = pd.read_csv(train_csv, keep_default_na=False)
    test = pd.read_csv(test_csv, keep_default_na=False)
    task = infer_task(train["labels"])
    spec = ImageSpec(size=size, channels=1, mean=(0.5,), std=(0.5,))
    folder = Path(train_csv).parent
    x_train = load_images([str(folder / f) for f in train["fname"]], spec).pixels.numpy().reshape(len(train), -1) / 255
    x_test = load_images([str(folder / f) for f in test["fname"]], spec).pixels.numpy().reshape(len(test), -1) / 255
    y_train, y_test = task.encode(train["labels"]).numpy(), task.encode(test["labels"]).numpy()

    def ovr() -> dict[str, float]:
        model = OneVsRestClassifier(LogisticRegression(max_iter=2000)).fit(x_train, y_train)
        return _multilabel_scores(y_test, model.predict_proba(x_test) >= 0.5)

    def plain() -> dict[str, float]:
        net, _ = train_plain_cnn(x_train, train["labels"], epochs=10, size=size)
        with torch.no_grad():
            logits = net(plain_images(x_test, size))
        return _multilabel_scores(y_test, (logits >= 0).numpy())

    def ours() -> dict[str, float]:
        clf = labelwise.fit(str(train_csv), target="labels", image_col="fname", progress=False)
        metrics = clf.evaluate(str(test_csv), target="labels")
        return {k: metrics[k] for k in _KEYS["multidigit"]}

    return [
        {"demo": name, "method": "sklearn one-vs-rest LogisticRegression @0.5", **_score(ovr)},
        {"demo": name, "method": "plain PyTorch loop (same CNN, Adam, 10 epochs) @0.5", **_score(plain)},
        {"demo": name, "method": "labelwise (defaults)", **_score(ours)},
    ]


def bench_multidigit(root: Path) -> list[Row]:
    demo = make_demo("multidigit", root)
    return _bench_canvases("multidigit", Path(demo.train), Path(demo.test), size=32)


def bench_multidigit64(root: Path) -> list[Row]:
    made = make_set("multidigit64", root)
    return _bench_canvases("multidigit64", Path(str(made["train"])), Path(str(made["test"])), size=64)


def _score(fn: Callable[[], dict[str, float]]) -> Row:
    scores, seconds = _timed(fn)
    return {**{k: round(float(v), 4) for k, v in scores.items()}, "seconds": round(seconds, 1)}


BENCHES = {
    "cancer": bench_cancer,
    "digits": bench_digits,
    "multidigit": bench_multidigit,
    "multidigit64": bench_multidigit64,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", nargs="+", default=list(BENCHES), choices=list(BENCHES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.demos:
            rows += BENCHES[name](Path(tmp))
    frame = pd.DataFrame(rows).set_index(["demo", "method"])
    print(frame.to_string(na_rep=""))


if __name__ == "__main__":
    main()
