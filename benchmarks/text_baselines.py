"""The practitioner's text baselines on the shipped text corpora (issue 15; not part of the test suite).

For each corpus of `labelwise.datasets.text.TEXT_CORPORA`: one seeded split, train/valid/test 60/20/20
(stratified by label; multilabel by iterative stratification over the tags), and on the same rows:

- ``tfidf-lr``: TF-IDF of word 1-2 grams (sublinear tf) + LogisticRegression (multilabel: one-vs-rest), C picked
  on validation from 0.1/1/10/100; binary and multilabel also pick the decision threshold on validation for F1
  (multilabel: one threshold shared by the tags, for micro-F1). Refit on train only, like every method here.
- ``fasttext``: fastText (``fasttext-numpy2-wheel``, Facebook's C++ fastText 0.9.2) with epoch 25,
  wordNgrams 2, dim 100, thread 1, seed 0; lr picked on validation from 0.1/0.25/0.5/1.0; binary: the threshold
  on P(positive) tuned on validation; multilabel: loss=ova and one threshold tuned on validation (rows without a
  tag carry no label, so fastText reads them as no example, as it always does).
- ``tfidf-wc-lr``: as tfidf-lr with word 1-2 grams and char_wb 2-5 grams side by side (a stronger reference).
- ``labelwise`` (``--labelwise``): `run_labelwise`, a hook to fill.

Metrics on test: binary: F1 of the rare class at the method's decision, ROC-AUC; multiclass: accuracy and
macro-F1; multilabel: micro-F1 at the decision, mAP (average precision, macro over tags present in test), and
the share of rows predicted with no tag next to the true share. ``fit_s``: wall seconds of the whole procedure
(every candidate, threshold tuning, the final model); ``predict_s``: predicting the test rows.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/text_baselines.py                 # every corpus, the three baselines
    python benchmarks/text_baselines.py --corpora sms-spam --labelwise    # one corpus, and labelwise

Writes a markdown table to stdout and beside ``--out`` (``.md``), and benchmarks/results/text_baselines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier

from labelwise.datasets.text import TEXT_CORPORA

SEED = 0
C_GRID = (0.1, 1.0, 10.0, 100.0)
LR_GRID = (0.1, 0.25, 0.5, 1.0)
RESULTS = Path(__file__).parent / "results" / "text_baselines.json"

Scores = np.ndarray  # binary: P(positive) per row; multiclass and multilabel: one column per class or tag


# -- split, labels, metrics -----------------------------------------------------------------------------------
def split(frame: pd.DataFrame, kind: str, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train/valid/test frames of about 60/20/20 % of the rows, stratified, in the corpus's row order."""
    index = np.arange(len(frame))
    if kind == "multilabel":
        from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

        y = tag_matrix(frame["label"], tags_of(frame["label"]))
        y = np.hstack([y, (y.sum(1) == 0)[:, None]])  # stratify the empty rows too
        first = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
        rest, test = next(first.split(index, y))
        second = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=0.25, random_state=seed)
        tr, va = next(second.split(rest, y[rest]))
        train, valid = rest[tr], rest[va]
    else:
        labels = frame["label"].to_numpy()
        rest, test = train_test_split(index, test_size=0.2, stratify=labels, random_state=seed)
        train, valid = train_test_split(rest, test_size=0.25, stratify=labels[rest], random_state=seed)
    return tuple(frame.iloc[np.sort(part)].reset_index(drop=True) for part in (train, valid, test))  # type: ignore[return-value]


def tags_of(labels: pd.Series) -> list[str]:
    return sorted({t for value in labels for t in value.split("|") if t})


def tag_matrix(labels: pd.Series, tags: list[str]) -> np.ndarray:
    position = {t: i for i, t in enumerate(tags)}
    y = np.zeros((len(labels), len(tags)), dtype=int)
    for row, value in enumerate(labels):
        for t in value.split("|"):
            if t in position:
                y[row, position[t]] = 1
    return y


def positive_class(frame: pd.DataFrame) -> str:
    """The rare class of a binary corpus."""
    return str(frame["label"].value_counts().idxmin())


def best_threshold(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximizing F1 (micro over a matrix) of ``scores >= threshold`` on these rows."""
    candidates = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, 401)))
    best = (0.5, -1.0)
    for t in candidates:
        f1 = f1_score(y.ravel(), (scores >= t).ravel().astype(int), zero_division=0)
        if f1 > best[1]:
            best = (float(t), float(f1))
    return best


def metrics(kind: str, y: np.ndarray, scores: Scores, predicted: np.ndarray) -> dict[str, float]:
    """Test metrics; ``y`` and ``predicted`` are 0/1 (binary), class indices (multiclass) or 0/1 matrices."""
    if kind == "binary":
        return {"f1": f1_score(y, predicted, zero_division=0), "roc_auc": roc_auc_score(y, scores)}
    if kind == "multiclass":
        return {"accuracy": accuracy_score(y, predicted), "macro_f1": f1_score(y, predicted, average="macro")}
    present = y.sum(0) > 0
    return {
        "micro_f1": f1_score(y, predicted, average="micro", zero_division=0),
        "map": average_precision_score(y[:, present], scores[:, present], average="macro"),
        "empty_pred": float((predicted.sum(1) == 0).mean()),
        "empty_true": float((y.sum(1) == 0).mean()),
    }


def targets(frame: pd.DataFrame, kind: str, classes: list[str]) -> np.ndarray:
    """``frame``'s labels as 0/1 of the positive class (binary), class indices, or a 0/1 tag matrix."""
    if kind == "binary":
        return (frame["label"] == classes[1]).to_numpy().astype(int)
    if kind == "multiclass":
        return frame["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return tag_matrix(frame["label"], classes)


def decide(kind: str, scores: Scores, threshold: float) -> np.ndarray:
    if kind == "multiclass":
        return scores.argmax(1)
    return (scores >= threshold).astype(int)


def tune(kind: str, y_valid: np.ndarray, scores: Scores) -> tuple[float, float]:
    """(threshold, validation score the candidate is chosen by) for one candidate model."""
    if kind == "multiclass":
        return 0.0, float(accuracy_score(y_valid, scores.argmax(1)))
    return best_threshold(y_valid, scores)


# -- TF-IDF + logistic regression -------------------------------------------------------------------------------
def _vectorizer(chars: bool) -> Callable[[], Any]:
    def make() -> Any:
        from sklearn.pipeline import FeatureUnion

        word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        if not chars:
            return word
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
        return FeatureUnion([("word", word), ("char", char)])

    return make


def _logreg(kind: str, c: float) -> Any:
    model = LogisticRegression(C=c, max_iter=2000)
    return OneVsRestClassifier(model) if kind == "multilabel" else model


def _lr_scores(kind: str, model: Any, x: sp.spmatrix) -> Scores:
    proba = model.predict_proba(x)
    return proba[:, 1] if kind == "binary" else proba


def run_tfidf(
    train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, kind: str, *, chars: bool
) -> dict[str, Any]:
    classes = class_list(train, kind)
    vectorizer = _vectorizer(chars)()
    x_train = vectorizer.fit_transform(train["text"])
    x_valid = vectorizer.transform(valid["text"])
    y_train, y_valid = targets(train, kind, classes), targets(valid, kind, classes)
    best: tuple[float, float, float, Any] | None = None  # (validation score, C, threshold, model)
    for c in C_GRID:
        model = _logreg(kind, c).fit(x_train, y_train)
        threshold, score = tune(kind, y_valid, _lr_scores(kind, model, x_valid))
        if best is None or score > best[0]:
            best = (score, c, threshold, model)
    assert best is not None
    start = time.perf_counter()
    scores = _lr_scores(kind, best[3], vectorizer.transform(test["text"]))
    predict_s = time.perf_counter() - start
    return {
        "scores": scores,
        "predicted": decide(kind, scores, best[2]),
        "predict_s": predict_s,
        "chosen": {"C": best[1], "threshold": round(best[2], 4), "valid_score": round(best[0], 4)},
    }


# -- fastText -------------------------------------------------------------------------------------------------
def _fasttext_file(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "train.txt"
    with path.open("w", encoding="utf-8") as out:
        for text, label in zip(frame["text"], frame["label"], strict=True):
            prefix = " ".join(f"__label__{t}" for t in label.split("|") if t)
            out.write(f"{prefix} {_one_line(text)}\n")
    return path


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fasttext_scores(model: Any, frame: pd.DataFrame, classes: list[str], kind: str) -> Scores:
    k = len(classes)
    labels, probs = model.predict([_one_line(t) for t in frame["text"]], k=k, threshold=-1.0)
    column = {f"__label__{c}": i for i, c in enumerate(classes)}
    scores = np.zeros((len(frame), k))
    for row, (names, values) in enumerate(zip(labels, probs, strict=True)):
        for name, value in zip(names, values, strict=True):
            scores[row, column[name]] = value
    return scores[:, 1] if kind == "binary" else scores


def run_fasttext(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, kind: str) -> dict[str, Any]:
    import fasttext

    classes = class_list(train, kind)
    y_valid = targets(valid, kind, classes)
    loss = "ova" if kind == "multilabel" else "softmax"
    best: tuple[float, float, float, Any] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        path = _fasttext_file(train, Path(tmp))
        for lr in LR_GRID:
            model = fasttext.train_supervised(
                input=str(path), epoch=25, wordNgrams=2, dim=100, lr=lr, loss=loss, thread=1, seed=SEED, verbose=0
            )
            threshold, score = tune(kind, y_valid, _fasttext_scores(model, valid, classes, kind))
            if best is None or score > best[0]:
                best = (score, lr, threshold, model)
    assert best is not None
    start = time.perf_counter()
    scores = _fasttext_scores(best[3], test, classes, kind)
    predict_s = time.perf_counter() - start
    return {
        "scores": scores,
        "predicted": decide(kind, scores, best[2]),
        "predict_s": predict_s,
        "chosen": {"lr": best[1], "threshold": round(best[2], 4), "valid_score": round(best[0], 4)},
    }


def class_list(train: pd.DataFrame, kind: str) -> list[str]:
    """Binary: [negative, positive (the rare class)]; multiclass: the classes; multilabel: the tags, sorted."""
    if kind == "binary":
        pos = positive_class(train)
        return [str(next(c for c in sorted(train["label"].unique()) if c != pos)), pos]
    if kind == "multiclass":
        return sorted(train["label"].unique())
    return tags_of(train["label"])


# -- labelwise (to fill) ----------------------------------------------------------------------------------------
def run_labelwise(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, kind: str) -> dict[str, Any]:
    """labelwise with its defaults, validating on exactly ``valid``'s rows; the same dict as the baselines.

    ``labelwise.fit(train + valid with an is_valid column, target="label")`` and nothing else, except, for the
    multilabel corpus, ``task="multilabel", label_sep="|"`` (the labels are strings joined by ``"|"``, ``""`` =
    none: labelwise cannot guess that a plain string column is multilabel when most rows hold one tag or none).
    Scores are labelwise's calibrated probabilities; ``predicted`` is labelwise's own decision (its thresholds
    tuned on validation, or argmax), as ``clf.predict`` would return it.
    """
    import labelwise

    classes = class_list(train, kind)
    frame = pd.concat([train.assign(is_valid=False), valid.assign(is_valid=True)], ignore_index=True)
    extra: dict[str, Any] = {"task": "multilabel", "label_sep": "|"} if kind == "multilabel" else {}
    clf = labelwise.fit(frame, target="label", progress=False, **extra)
    start = time.perf_counter()
    labels = clf.predict(test[["text"]])  # timed: one pass, featurizing to decisions (the baselines time one)
    predict_s = time.perf_counter() - start
    proba = clf.predict_proba(test[["text"]])  # the same pass again, for the probabilities
    column = [list(clf.task.classes).index(c) for c in classes]  # labelwise's class order -> class_list's
    proba = proba[:, column]
    if kind == "binary":
        scores: Scores = proba[:, 1]
        predicted = np.array([int(label == classes[1]) for label in labels])
    elif kind == "multiclass":
        scores = proba
        predicted = np.array([classes.index(label) for label in labels])
    else:
        scores = proba
        predicted = tag_matrix(pd.Series(["|".join(tags) for tags in labels]), classes)
    rule = clf.policy.rule
    history = clf.info["training"]["history"]
    best = clf.info["training"]["best_epoch"]
    chosen: dict[str, Any] = {"model": clf.model_spec.backbone, "l2": history[best].get("l2")}
    if rule.threshold is not None:
        chosen["threshold"] = round(float(rule.threshold), 4)
    elif rule.shared_threshold is not None:
        chosen["threshold"] = round(float(rule.shared_threshold), 4)
    elif rule.thresholds is not None:
        chosen["thresholds"] = "per tag " + "/".join(f"{float(t):.2f}" for t in rule.thresholds)
    return {"scores": scores, "predicted": predicted, "predict_s": predict_s, "chosen": chosen}


METHODS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, str], dict[str, Any]]] = {
    "tfidf-lr": lambda tr, va, te, kind: run_tfidf(tr, va, te, kind, chars=False),
    "fasttext": run_fasttext,
    "tfidf-wc-lr": lambda tr, va, te, kind: run_tfidf(tr, va, te, kind, chars=True),
    "labelwise": run_labelwise,
}


# -- driver ---------------------------------------------------------------------------------------------------
def evaluate(name: str, methods: list[str]) -> list[dict[str, Any]]:
    corpus = TEXT_CORPORA[name]
    train, valid, test = split(corpus.build(), corpus.kind)
    classes = class_list(train, corpus.kind)
    y_test = targets(test, corpus.kind, classes)
    rows = []
    for method in methods:
        start = time.perf_counter()
        out = METHODS[method](train, valid, test, corpus.kind)
        fit_s = time.perf_counter() - start - out["predict_s"]
        scores = metrics(corpus.kind, y_test, out["scores"], out["predicted"])
        rows.append(
            {
                "corpus": name,
                "kind": corpus.kind,
                "method": method,
                "n_train": len(train),
                "n_valid": len(valid),
                "n_test": len(test),
                **{k: round(float(v), 4) for k, v in scores.items()},
                "fit_s": round(fit_s, 1),
                "predict_s": round(out["predict_s"], 2),
                "chosen": out["chosen"],
            }
        )
        print(f"  {name} {method}: {scores} fit {fit_s:.1f}s", flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    columns = {
        "binary": ("f1", "roc_auc"),
        "multiclass": ("accuracy", "macro_f1"),
        "multilabel": ("micro_f1", "map", "empty_pred", "empty_true"),
    }
    lines = [
        "| corpus | kind | method | metrics (test) | fit s | predict s | chosen on validation |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shown = ", ".join(f"{k} {r[k]:.3f}" for k in columns[r["kind"]])
        chosen = ", ".join(f"{k}={v}" for k, v in r["chosen"].items())
        lines.append(
            f"| {r['corpus']} | {r['kind']} | {r['method']} | {shown} | {r['fit_s']} | {r['predict_s']} | {chosen} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", default=sorted(TEXT_CORPORA), choices=sorted(TEXT_CORPORA))
    parser.add_argument("--methods", nargs="+", default=["tfidf-lr", "fasttext", "tfidf-wc-lr"], choices=METHODS)
    parser.add_argument("--labelwise", action="store_true", help="also run labelwise (run_labelwise)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    methods = list(args.methods) + (["labelwise"] if args.labelwise and "labelwise" not in args.methods else [])
    rows = [row for name in args.corpora for row in evaluate(name, methods)]
    print(markdown(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seed": SEED, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    header = (
        "# Text baselines (issue 15)\n\n"
        f"`python benchmarks/text_baselines.py {' '.join(sys.argv[1:])}`: seed {SEED}, one 60/20/20 split per "
        "corpus, every method in the same process, one after another. fit/predict seconds are wall time on a "
        f"shared {os.cpu_count()}-core machine (other jobs ran beside it: noisy, compare within a corpus).\n\n"
    )
    args.out.with_suffix(".md").write_text(header + markdown(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
