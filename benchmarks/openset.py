"""Open-set digits: labelwise's three ways of answering "none of these" against peers, side by side in one run.

Not part of the test suite. On the ``openset`` demo (`make_demo("openset", root, seed=0)`: scikit-learn's digits
as 32x32 PNGs, train and validate on digits 0-5, test on all ten, 6-9 being classes never seen in training) this
trains, on the same train/validation images, and scores on the same untouched test split:

- labelwise through the public API with ``allow_none`` = ``max_prob``, ``energy`` and ``one_vs_rest`` (three fits,
  ``TrainConfig(seed=0)``, everything else default; the reject threshold is labelwise's default, 95% coverage of
  the validation items). Seconds include reading the images, training, calibration and `evaluate`.
- scikit-learn LogisticRegression on the raw pixels (PNG read with PIL, flattened, /255), trained on
  ``trainval/train``; unknown score = 1 - max predict_proba (MSP).
- a plain PyTorch loop: the same compact CNN as labelwise (`create_network`), Adam (lr 1e-3), batch 64, 15 epochs,
  no augmentation, no early stopping, no calibration, trained on ``trainval/train``; unknown scores MSP
  (1 - max softmax) and energy (-logsumexp of the logits). Both rows come from one training, and both show its
  seconds (training + scoring).

Every unknown score is higher = more likely unknown. Columns:

- ``accuracy``: top-1 accuracy on the test items of known classes (0-5), before abstaining.
- ``unknown_auroc``, ``unknown_fpr95``: the unknown score as a detector of the test items of classes 6-9, from
  `labelwise.decide.ood.ood_metrics` for every method (the definitions `evaluate` uses).
- ``selective_accuracy``, ``coverage``: at the reject threshold that answers 95% of the validation items (the
  smallest validation score accepting at least 95% of them, the rule of `labelwise.decide.ood.risk_coverage`
  and of labelwise's own threshold), on every test item: coverage = fraction answered (score <= threshold),
  selective accuracy = fraction of the answered items that are of a known class and classified right.
- ``seconds``: wall seconds of the method (peers: image reading excluded; torch threads set by ``--threads``).

Usage::

    python benchmarks/openset.py              # 2 threads
    python benchmarks/openset.py --threads 4

Prints one table: method, the metrics above, wall seconds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import torch
from peers import plain_images, train_plain_cnn
from PIL import Image
from sklearn.linear_model import LogisticRegression

import labelwise
from labelwise.datasets import Demo, make_demo
from labelwise.decide.ood import ood_metrics, risk_coverage
from labelwise.train import TrainConfig

Row = dict[str, object]
T = TypeVar("T")
Split = tuple[np.ndarray, np.ndarray]  # (N, 1024) float pixels in [0, 1], (N,) str labels

COLUMNS = ("accuracy", "unknown_auroc", "unknown_fpr95", "selective_accuracy", "coverage")
COVERAGE = 0.95
EPOCHS = 15


def _read_split(folder: Path) -> Split:
    """The PNGs of a ``<class>/<index>.png`` tree as flat float pixels / 255 and their folder labels."""
    paths = sorted(folder.glob("*/*.png"), key=lambda p: (p.parent.name, int(p.stem)))
    pixels = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float64).ravel() / 255.0 for p in paths])
    return pixels, np.array([p.parent.name for p in paths])


def _peer_metrics(
    valid_scores: np.ndarray,
    valid_correct: np.ndarray,
    test_scores: np.ndarray,
    test_pred: np.ndarray,
    y_test: np.ndarray,
    known_classes: tuple[str, ...],
) -> dict[str, float]:
    """The table's metrics for a peer, from its validation and test unknown scores and test predictions."""
    known = np.isin(y_test, known_classes)
    correct = known & (test_pred == y_test)
    test = torch.tensor(test_scores, dtype=torch.float64)
    (row,) = risk_coverage(
        torch.tensor(valid_scores, dtype=torch.float64), torch.tensor(valid_correct), coverages=(COVERAGE,)
    )
    answered = test_scores <= row["threshold"]
    return {
        "accuracy": correct[known].mean(),
        **ood_metrics(test, torch.tensor(~known)),
        "selective_accuracy": correct[answered].mean() if answered.any() else float("nan"),
        "coverage": answered.mean(),
    }


def bench_labelwise(demo: Demo) -> list[Row]:
    rows: list[Row] = []
    for strategy in ("max_prob", "energy", "one_vs_rest"):

        def run(strategy: str = strategy) -> dict[str, float]:
            clf = labelwise.fit(demo.train, allow_none=strategy, config=TrainConfig(seed=0), progress=False)
            metrics = clf.evaluate(demo.test)
            return {k: metrics[k] for k in COLUMNS}

        rows.append({"method": f"labelwise allow_none={strategy}", **_score(run)})
    return rows


def bench_logreg(demo: Demo, train: Split, valid: Split, test: Split) -> list[Row]:
    def run() -> dict[str, float]:
        model = LogisticRegression(max_iter=2000).fit(*train)

        def msp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            proba = model.predict_proba(x)
            return 1.0 - proba.max(axis=1), model.classes_[proba.argmax(axis=1)]

        valid_scores, valid_pred = msp(valid[0])
        test_scores, test_pred = msp(test[0])
        return _peer_metrics(valid_scores, valid_pred == valid[1], test_scores, test_pred, test[1], demo.known_classes)

    return [{"method": "sklearn LogisticRegression (pixels), MSP", **_score(run)}]


def bench_plain_torch(demo: Demo, train: Split, valid: Split, test: Split) -> list[Row]:
    def run() -> dict[str, dict[str, float]]:
        # Importing Lightning (labelwise does) turns on an NVML-based CUDA check that slows every optimizer step
        # on a CPU; a plain PyTorch process would not have it (see benchmarks/overhead.py).
        nvml_check = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
        try:
            return _plain_torch_cnn(demo, train, valid, test)
        finally:
            if nvml_check is not None:
                os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = nvml_check

    by_score, seconds = _timed(run)
    name = f"plain PyTorch loop (same CNN, Adam, {EPOCHS} epochs)"
    return [
        {"method": f"{name}, {score}", **_rounded(metrics), "seconds": round(seconds, 1)}
        for score, metrics in by_score.items()
    ]


def _plain_torch_cnn(demo: Demo, train: Split, valid: Split, test: Split) -> dict[str, dict[str, float]]:
    net, task = train_plain_cnn(train[0], list(train[1]), epochs=EPOCHS)  # the same peer as benchmarks/peers.py
    with torch.no_grad():
        valid_outputs, test_logits = net(plain_images(valid[0])).double(), net(plain_images(test[0])).double()
    scores = {
        "MSP": lambda z: 1.0 - torch.softmax(z, dim=1).max(dim=1).values,
        "energy": lambda z: -torch.logsumexp(z, dim=1),
    }
    valid_pred = np.array([str(c) for c in task.decode(valid_outputs.argmax(1))])
    test_pred = np.array([str(c) for c in task.decode(test_logits.argmax(1))])
    return {
        name: _peer_metrics(
            score(valid_outputs).numpy(),
            valid_pred == valid[1],
            score(test_logits).numpy(),
            test_pred,
            test[1],
            demo.known_classes,
        )
        for name, score in scores.items()
    }


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(float(scores[k]), 4) for k in COLUMNS if k in scores}


def _score(fn: Callable[[], dict[str, float]]) -> Row:
    scores, seconds = _timed(fn)
    return {**_rounded(scores), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        demo = make_demo("openset", Path(tmp), seed=0)
        train, valid = _read_split(demo.train / "train"), _read_split(demo.train / "valid")
        test = _read_split(demo.test)
        rows += bench_logreg(demo, train, valid, test)
        rows += bench_plain_torch(demo, train, valid, test)
        rows += bench_labelwise(demo)
    frame = pd.DataFrame(rows).set_index("method")
    print(frame.to_string(na_rep=""))


if __name__ == "__main__":
    main()
