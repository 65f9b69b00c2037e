"""Issue 16 item 3: does the held-out rule keep tuned thresholds from losing to 0.5 on test by luck?

For each data set and seed, one labelwise fit with its defaults; its validation probabilities are tuned twice, with
the held-out rule (what labelwise does now) and without it (``held_out=False``: the threshold best on the
validation items, what it did before); test F1 (binary: of the positive class; multilabel: micro) is reported for
both and for 0.5, with the out-of-bag gain and whether 0.5 was kept.

Data: ``cancer-imbalanced`` (breast cancer keeping 10 % of the malignant rows: 3-5 validation positives; the issue's
case) and ``cancer`` over seeds 0-9 (each seed its own split), and the sms-spam and recipe-allergens text corpora
(`labelwise.datasets.text`, the split of benchmarks/text_baselines.py).

Usage: ``python benchmarks/decision_holdout.py`` (a few minutes on 2 cores); writes a markdown table to stdout.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score

import labelwise
from labelwise.datasets import make_demo, make_imbalanced_cancer
from labelwise.decide import tune_thresholds

sys.path.insert(0, str(Path(__file__).parent))
from text_baselines import split  # noqa: E402

from labelwise.datasets.text import load_text_corpus  # noqa: E402


def _f1(task: labelwise.Task, truth: np.ndarray, probs: torch.Tensor, rule: labelwise.decide.DecisionRule) -> float:
    decided = rule.decide(probs).numpy()
    if task.kind == "multilabel":
        return float(f1_score(truth, decided.astype(int), average="micro", zero_division=0))
    positive = task.classes.index(task.positive)
    return float(f1_score(truth == positive, decided == positive, zero_division=0))


def _outputs(clf: labelwise.Classifier, frame: pd.DataFrame, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Calibrated probabilities of ``frame``'s rows and their encoded targets."""
    source = labelwise.data.source_from_frame(frame.drop(columns="is_valid", errors="ignore"), target=target)
    return clf.predict_source(source).probs, clf.task.encode(source.labels)


def run(name: str, seed: int, train: pd.DataFrame | Path, test: pd.DataFrame | Path, **options: object) -> dict:
    clf = labelwise.fit(train, progress=False, seed=seed, **options)
    task, rule = clf.task, clf.policy.rule
    valid = clf.info["training"]
    target = str(options.get("target", "label"))
    train_frame = pd.read_csv(train, keep_default_na=False) if isinstance(train, Path) else train
    test_frame = pd.read_csv(test, keep_default_na=False) if isinstance(test, Path) else test
    probs, truth_t = _outputs(clf, test_frame, target)
    truth = truth_t.numpy()
    valid_probs, valid_targets = _outputs(clf, train_frame[train_frame["is_valid"].astype(bool)], target)
    before = tune_thresholds(valid_probs, valid_targets, task, held_out=False)
    half = tune_thresholds(valid_probs, valid_targets, task, held_out=False, min_count=10**9)  # 0.5 everywhere
    return {
        "data": name, "seed": seed, "valid": valid.get("num_valid"), "valid positives": int(valid_targets.sum()),
        "F1 held-out rule": _f1(task, truth, probs, rule), "F1 tuned (before)": _f1(task, truth, probs, before),
        "F1 at 0.5": _f1(task, truth, probs, half), "out-of-bag gain": rule.held_out_gain,
        "0.5 kept": rule.kept_default,
    }  # fmt: skip


def _markdown(table: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for seed in range(10):
            demo = make_imbalanced_cancer(Path(root) / f"i{seed}", positive_fraction=0.1, seed=seed)
            rows.append(run("cancer-imbalanced", seed, demo.train, demo.test, target="diagnosis"))
            demo = make_demo("cancer", Path(root) / f"c{seed}", seed=seed)
            rows.append(run("cancer", seed, demo.train, demo.test, target="diagnosis"))
    for corpus, extra in (("sms-spam", {}), ("recipe-allergens", {"task": "multilabel", "label_sep": "|"})):
        train, valid, test = split(load_text_corpus(corpus), "multilabel" if extra else "binary")
        frame = pd.concat([train.assign(is_valid=False), valid.assign(is_valid=True)])
        rows.append(run(corpus, 0, frame, test, target="label", **extra))
    table = pd.DataFrame(rows)
    print(_markdown(table))
    for name, part in table.groupby("data", sort=False):
        worse = (part["F1 held-out rule"] < part["F1 at 0.5"] - 0.005).sum()
        before = (part["F1 tuned (before)"] < part["F1 at 0.5"] - 0.005).sum()
        print(f"\n{name}: mean test F1 held-out rule {part['F1 held-out rule'].mean():.3f}, tuned before "
              f"{part['F1 tuned (before)'].mean():.3f}, 0.5 {part['F1 at 0.5'].mean():.3f}; runs more than 0.005 "
              f"below 0.5: {worse} now, {before} before (of {len(part)})")  # fmt: skip


if __name__ == "__main__":
    main()
