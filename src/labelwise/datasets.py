"""Demo data made on the fly from scikit-learn's bundled datasets (nothing is downloaded).

Each demo is written to ``ROOT/<name>/`` and described by a `Demo`: what ``labelwise train`` is given
(``train``, which holds the validation rows too) and what ``labelwise evaluate`` is given (``test``, never
seen in training or tuning). Layouts::

    digits/                    multiclass, 1797 load_digits images as 32x32 grayscale PNG, split 70/15/15
      trainval/train/<digit>/<index>.png     Demo.train = digits/trainval  (a train/valid split tree)
      trainval/valid/<digit>/<index>.png
      test/<digit>/<index>.png               Demo.test  = digits/test      (a plain <class>/ tree)
    cancer/                    binary, load_breast_cancer: 30 features + `diagnosis` (malignant/benign)
      train.csv                80 % of the rows, with a bool `is_valid` column (20 % of them True)
      test.csv                 20 % of the rows, same columns without `is_valid`
    cancer-imbalanced/         as cancer, but keeping only `positive_fraction` of the malignant rows per split
    multidigit/                multilabel, 32x32 canvases holding 0..3 distinct digits in a 2x2 grid
      images/{train,valid,test}_<n>.png
      train.csv                `fname`, `labels` ("3 7", "" = none), `is_valid`: 2400 train + 600 valid canvases
      test.csv                 `fname`, `labels`: 800 canvases
      sources.csv              provenance: the load_digits indices drawn on each canvas (not a training input)

Splits are stratified and seeded; multidigit draws train, valid and test canvases from disjoint subsets of
load_digits (no source image leaks). A demo is built in a temporary folder inside ROOT, then moved into place
with `os.replace`: an interrupted run never leaves half a demo. A later call with the same settings (recorded in
``labelwise-demo.json``, written last) reuses the finished demo; other settings rewrite it.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from labelwise.errors import ConfigError, DataError

__all__ = ["Demo", "list_demos", "make_demo", "make_imbalanced_cancer"]

_FORMAT_VERSION = 1
_MANIFEST = "labelwise-demo.json"
# A temporary folder this old belongs to a run that died: a demo is written in a few seconds.
_STALE_TEMP_S = 3600.0
_EMPTY_RATE = 0.10
_MULTIDIGIT_SIZES = {"train": 2400, "valid": 600, "test": 800}


@dataclass(frozen=True, kw_only=True)
class Demo:
    """A demo data set written to disk.

    Args:
        name: the demo's name (one of `list_demos`).
        train: what ``labelwise train`` is given, validation rows included (``is_valid`` column or ``valid/`` tree).
        test: what ``labelwise evaluate`` is given; never seen in training, early stopping or threshold tuning.
        target: the target column(s) of a table, None for a folder tree (the class is the folder name).
        image_col: the column of image paths (relative to the table's folder), None when there is none.
        description: one line saying what the demo is.
        headline: the metric the demo's quality bar is about (a key of `labelwise.metrics.compute_metrics`).
    """

    name: str
    train: Path
    test: Path
    target: list[str] | None = None
    image_col: str | None = None
    description: str = ""
    headline: str = ""


@dataclass(frozen=True, kw_only=True)
class _Recipe:
    """How to write one demo and how to describe what was written."""

    write: Callable[[Path, int], None]  # (empty folder, seed) -> the demo's files in it
    description: str
    headline: str
    train: str = "train.csv"  # paths relative to the demo folder
    test: str = "test.csv"
    target: tuple[str, ...] | None = None
    image_col: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest: a change means a rewrite


def list_demos() -> list[str]:
    """Names of the demos `make_demo` can write.

    Example:
        >>> list_demos()
        ['cancer', 'cancer-imbalanced', 'digits', 'multidigit']
    """
    return sorted(_RECIPES)


def make_demo(name: str, root: Path | str, *, seed: int = 0) -> Demo:
    """Write the demo ``name`` under ``root/<name>/`` (or reuse it when already written with this seed).

    Args:
        name: one of `list_demos`.
        root: folder to write into; created when missing.
        seed: seeds the splits (and the multidigit canvases); the same seed gives the same bytes.

    Returns:
        the `Demo`, whose ``train`` and ``test`` paths exist.

    Raises:
        ConfigError: an unknown name (with the closest names), or a seed that is not a non-negative int.
        DataError: ``root`` is a file, or ``root/<name>`` exists and is not a labelwise demo.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     demo = make_demo("cancer", tmp)
        ...     print(demo.train.name, demo.test.name, demo.target, demo.headline)
        train.csv test.csv ['diagnosis'] roc_auc
    """
    if name not in _RECIPES:
        close = difflib.get_close_matches(str(name), list_demos(), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            f"unknown demo {name!r}; {hint}Expected one of {', '.join(list_demos())}. "
            "Pass one of those names (CLI: `labelwise demo NAME`)."
        )
    return _materialize(name, _RECIPES[name], root, seed=seed)


def make_imbalanced_cancer(root: Path | str, *, positive_fraction: float = 0.1, seed: int = 0) -> Demo:
    """Write ``root/cancer-imbalanced/``, the cancer demo keeping some of the malignant rows; headline ``recall``.

    The split is the cancer demo's (stratified 64/16/20); then, in each of train, valid and test, a seeded
    ``positive_fraction`` of the malignant rows is kept (at least one), and every benign row. With the default
    0.1 that leaves 21 of 212 malignant rows (14 train, 3 valid, 4 test; 136/34/42 before) next to 357 benign ones.

    Args:
        root: folder to write into; created when missing.
        positive_fraction: fraction of the malignant rows to keep, in (0, 1].
        seed: seeds the split and the subsampling.

    Raises:
        ConfigError: ``positive_fraction`` outside (0, 1], or a bad seed.
        DataError: as for `make_demo`.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     demo = make_imbalanced_cancer(tmp, positive_fraction=0.2)
        ...     int((pd.read_csv(demo.test)["diagnosis"] == "malignant").sum())
        8
    """
    is_number = isinstance(positive_fraction, (int, float)) and not isinstance(positive_fraction, bool)
    if not is_number or not 0.0 < positive_fraction <= 1.0:
        raise ConfigError(
            f"positive_fraction={positive_fraction!r}; expected a number in (0, 1], the fraction of the malignant "
            "rows to keep (e.g. 0.1)."
        )
    return _materialize("cancer-imbalanced", _imbalanced_recipe(float(positive_fraction)), root, seed=seed)


# -- writing a demo atomically -----------------------------------------------------------------------
def _materialize(name: str, recipe: _Recipe, root: Path | str, *, seed: int) -> Demo:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= int(seed) < 2**32:
        raise ConfigError(f"seed={seed!r}; expected an int in [0, 2**32), e.g. seed=0.")
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        msg = f"root={str(root)!r} is a file (or lies under one); expected a folder to write demos into."
        raise DataError(f"{msg} Pass a folder path.") from None
    dest, seed = root / name, int(seed)
    manifest = {"format_version": _FORMAT_VERSION, "name": name, "seed": seed, "options": recipe.options}
    if _read_manifest(dest) != manifest:
        if dest.exists() and _read_manifest(dest) is None:
            raise DataError(
                f"{str(dest)!r} exists and is not a labelwise demo (no {_MANIFEST} in it); expected an empty place "
                "to write the demo. Pass another root, or move that folder away."
            )
        _remove_stale_temps(root, name)
        _build(recipe, dest, seed=seed, manifest=manifest)
    return Demo(
        name=name,
        train=dest / recipe.train,
        test=dest / recipe.test,
        target=list(recipe.target) if recipe.target is not None else None,
        image_col=recipe.image_col,
        description=recipe.description,
        headline=recipe.headline,
    )


def _read_manifest(dest: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((dest / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _build(recipe: _Recipe, dest: Path, *, seed: int, manifest: dict[str, Any]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    # Built one level down: mkdtemp's folder is private (0700), a plain mkdir follows the umask.
    staged = tmp / dest.name
    try:
        staged.mkdir()
        recipe.write(staged, seed)
        # Written last, so a folder holding a manifest is always a finished demo.
        (staged / _MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if dest.exists():
            os.replace(dest, tmp / "replaced")  # a folder cannot replace a non-empty one: move the old demo aside
        try:
            os.replace(staged, dest)
        except OSError:
            if _read_manifest(dest) != manifest:  # else another process just wrote the same demo: keep theirs
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_temps(root: Path, name: str) -> None:
    now = time.time()
    for path in root.glob(f".{name}.tmp-*"):
        try:
            if now - path.stat().st_mtime > _STALE_TEMP_S:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # removed meanwhile by the run that owned it


# -- shared helpers ------------------------------------------------------------------------------------
def _split_three(labels: np.ndarray, fractions: tuple[float, float, float], *, seed: int) -> list[np.ndarray]:
    """Row indices split into train/valid/test of about ``fractions``, each stratified by ``labels``, sorted."""
    from sklearn.model_selection import train_test_split  # imported here: keeps `import labelwise` light

    index = np.arange(len(labels))
    _, f_valid, f_test = fractions
    rest, test = train_test_split(index, test_size=f_test, stratify=labels, random_state=seed)
    train, valid = train_test_split(rest, test_size=f_valid / (1.0 - f_test), stratify=labels[rest], random_state=seed)
    return [np.sort(part) for part in (train, valid, test)]


def _digit_pixels(size: int) -> tuple[np.ndarray, np.ndarray]:
    """load_digits as uint8 ``(1797, size, size)`` images (0..16 scaled to 0..255, bicubic upscale) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    big = [np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC)) for img in small]
    return np.stack(big), np.asarray(digits.target, dtype=np.int64)


def _save_png(pixels: np.ndarray, path: Path) -> None:
    # PIL writes no timestamp into PNGs, so the same pixels always give the same bytes.
    Image.fromarray(pixels).save(path, format="PNG", optimize=False)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


# -- digits ----------------------------------------------------------------------------------------------
def _write_digits(folder: Path, seed: int) -> None:
    pixels, labels = _digit_pixels(32)
    parts = _split_three(labels, (0.70, 0.15, 0.15), seed=seed)
    for part, indices in zip(("trainval/train", "trainval/valid", "test"), parts, strict=True):
        for digit in range(10):
            (folder / part / str(digit)).mkdir(parents=True)
        for i in indices:
            _save_png(pixels[i], folder / part / str(labels[i]) / f"{i:04d}.png")


# -- cancer ----------------------------------------------------------------------------------------------
def _cancer_frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    # Underscores instead of spaces, so column names need no quoting on a command line.
    frame = data.data.rename(columns=lambda c: str(c).replace(" ", "_"))
    frame["diagnosis"] = np.asarray(data.target_names, dtype=object)[data.target.to_numpy()]
    return frame


def _write_cancer(folder: Path, seed: int, *, positive_fraction: float = 1.0) -> None:
    frame = _cancer_frame()
    labels = frame["diagnosis"].to_numpy()
    parts = _split_three(labels, (0.64, 0.16, 0.20), seed=seed)
    if positive_fraction < 1.0:
        rng = np.random.default_rng(seed)
        parts = [
            _keep_fraction(part, labels[part] == "malignant", fraction=positive_fraction, rng=rng) for part in parts
        ]
    train, valid, test = parts
    trainval = frame.iloc[np.sort(np.concatenate([train, valid]))].copy()
    trainval["is_valid"] = trainval.index.isin(valid)
    _write_csv(trainval, folder / "train.csv")
    _write_csv(frame.iloc[test], folder / "test.csv")


def _keep_fraction(rows: np.ndarray, positive: np.ndarray, *, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``rows`` with a seeded ``fraction`` (at least one) of the positive rows and all the others, sorted."""
    pos = rows[positive]
    keep = rng.choice(pos, size=max(1, round(fraction * len(pos))), replace=False)
    return np.sort(np.concatenate([rows[~positive], keep]))


def _imbalanced_recipe(positive_fraction: float) -> _Recipe:
    return _Recipe(
        write=functools.partial(_write_cancer, positive_fraction=positive_fraction),
        target=("diagnosis",),
        description=(
            f"Breast cancer (binary, imbalanced): the cancer demo keeping {positive_fraction:.0%} of the malignant "
            "rows; the tuned threshold should still find most of them."
        ),
        headline="recall",
        options={"positive_fraction": positive_fraction},
    )


# -- multidigit ------------------------------------------------------------------------------------------
def _plan_canvases(num: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Distinct digits per canvas: exactly ``round(10 %)`` empty, the rest split evenly over 1, 2 and 3 digits."""
    empty = round(_EMPTY_RATE * num)
    counts = np.resize(np.array([1, 2, 3]), num - empty)
    sizes = rng.permutation(np.concatenate([np.zeros(empty, dtype=np.int64), counts]))
    return [np.sort(rng.choice(10, size=int(k), replace=False)) for k in sizes]


def _draw_canvases(
    pool: np.ndarray, *, labels: np.ndarray, pixels: np.ndarray, num: int, rng: np.random.Generator
) -> tuple[np.ndarray, pd.DataFrame]:
    """``num`` canvases ``(num, 32, 32)`` uint8 drawn from the images in ``pool``, and their labels and sources."""
    by_digit = [pool[labels[pool] == d] for d in range(10)]
    canvases = np.zeros((num, 32, 32), dtype=np.uint8)
    plans = _plan_canvases(num, rng)
    sources = []
    for n, digits in enumerate(plans):
        slots = rng.choice(4, size=len(digits), replace=False)
        chosen = np.array([rng.choice(by_digit[d]) for d in digits], dtype=np.int64)
        for slot, source in zip(slots, chosen, strict=True):
            row, col = divmod(int(slot), 2)
            canvases[n, 16 * row : 16 * row + 16, 16 * col : 16 * col + 16] = pixels[source]
        sources.append(chosen)
    # Labels as "3 7" ("" = none): the space-separated sets `infer_task` splits back.
    text = {"labels": plans, "sources": sources}
    return canvases, pd.DataFrame({key: [" ".join(map(str, row)) for row in rows] for key, rows in text.items()})


def _write_multidigit(folder: Path, seed: int) -> None:
    pixels, labels = _digit_pixels(16)
    pools = _split_three(labels, (0.64, 0.16, 0.20), seed=seed)
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir()
    tables = []
    for split, pool in zip(("train", "valid", "test"), pools, strict=True):
        num = _MULTIDIGIT_SIZES[split]
        canvases, drawn = _draw_canvases(pool, labels=labels, pixels=pixels, num=num, rng=rng)
        drawn.insert(0, "fname", [f"images/{split}_{n:05d}.png" for n in range(num)])
        for fname, canvas in zip(drawn["fname"], canvases, strict=True):
            _save_png(canvas, folder / fname)
        tables.append(drawn.assign(is_valid=split == "valid", split=split))
    table = pd.concat(tables, ignore_index=True)
    is_test = table["split"] == "test"
    _write_csv(table.loc[~is_test, ["fname", "labels", "is_valid"]], folder / "train.csv")
    _write_csv(table.loc[is_test, ["fname", "labels"]], folder / "test.csv")
    _write_csv(table[["fname", "split", "sources"]], folder / "sources.csv")


# -- the registry ------------------------------------------------------------------------------------------
_RECIPES: dict[str, _Recipe] = {
    "digits": _Recipe(
        write=_write_digits,
        train="trainval",
        test="test",
        description="Handwritten digits (multiclass, 10 classes): 1797 32x32 grayscale PNGs in class folders.",
        headline="accuracy",
    ),
    "cancer": _Recipe(
        write=_write_cancer,
        target=("diagnosis",),
        description="Breast cancer (binary): 569 tumours, 30 numeric features, diagnosis malignant or benign.",
        headline="roc_auc",
    ),
    "cancer-imbalanced": _imbalanced_recipe(0.1),
    "multidigit": _Recipe(
        write=_write_multidigit,
        target=("labels",),
        image_col="fname",
        description="Digits on a 2x2 grid (multilabel, 10 labels): 0 to 3 distinct digits per 32x32 image, 10 % empty.",
        headline="micro_f1",
    ),
}
