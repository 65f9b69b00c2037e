"""Writers of the image demos made from load_digits: ``digits``, ``openset`` and ``multidigit``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from labelwise.datasets._common import split_three, write_csv

_ALL_DIGITS = tuple(range(10))
_TREE_PARTS = ("trainval/train", "trainval/valid", "test")
_EMPTY_RATE = 0.10
_MULTIDIGIT_SIZES = {"train": 2400, "valid": 600, "test": 800}


def _digit_pixels(size: int) -> tuple[np.ndarray, np.ndarray]:
    """load_digits as uint8 ``(1797, size, size)`` images (0..16 scaled to 0..255, bicubic upscale) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    big = [np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC)) for img in small]
    return np.stack(big), np.asarray(digits.target, dtype=np.int64)


def save_png(pixels: np.ndarray, path: Path) -> None:
    # PIL writes no timestamp into PNGs, so the same pixels always give the same bytes.
    Image.fromarray(pixels).save(path, format="PNG", optimize=False)


# -- digits and openset: class-folder trees --------------------------------------------------------------
def write_digits(folder: Path, seed: int) -> None:
    """All 1797 images as ``<part>/<digit>/<index>.png``, split 70/15/15."""
    _write_digit_tree(folder, seed, classes=(_ALL_DIGITS, _ALL_DIGITS, _ALL_DIGITS))


def write_openset(folder: Path, seed: int, *, known: tuple[int, ...]) -> None:
    """The digits tree (same split), its train and valid parts holding only the ``known`` digits."""
    _write_digit_tree(folder, seed, classes=(known, known, _ALL_DIGITS))


def _write_digit_tree(folder: Path, seed: int, *, classes: tuple[tuple[int, ...], ...]) -> None:
    """The digits split; part ``k`` (train, valid, test) gets a folder and the images of each digit in classes[k]."""
    pixels, labels = _digit_pixels(32)
    # One split over all ten digits, whichever are kept: openset's images are then exactly digits' images.
    parts = split_three(labels, (0.70, 0.15, 0.15), seed=seed)
    for part, indices, kept in zip(_TREE_PARTS, parts, classes, strict=True):
        for digit in kept:
            (folder / part / str(digit)).mkdir(parents=True)
        for i in indices[np.isin(labels[indices], kept)]:
            save_png(pixels[i], folder / part / str(labels[i]) / f"{i:04d}.png")


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
    """``num`` canvases ``(num, 2 cell, 2 cell)`` uint8 of the ``(cell, cell)`` images in ``pool``, and their labels
    and sources."""
    by_digit = [pool[labels[pool] == d] for d in range(10)]
    cell = pixels.shape[-1]
    canvases = np.zeros((num, 2 * cell, 2 * cell), dtype=np.uint8)
    plans = _plan_canvases(num, rng)
    sources = []
    for n, digits in enumerate(plans):
        slots = rng.choice(4, size=len(digits), replace=False)
        chosen = np.array([rng.choice(by_digit[d]) for d in digits], dtype=np.int64)
        for slot, source in zip(slots, chosen, strict=True):
            row, col = divmod(int(slot), 2)
            canvases[n, cell * row : cell * (row + 1), cell * col : cell * (col + 1)] = pixels[source]
        sources.append(chosen)
    # Labels as "3 7" ("" = none): the space-separated sets `infer_task` splits back.
    text = {"labels": plans, "sources": sources}
    return canvases, pd.DataFrame({key: [" ".join(map(str, row)) for row in rows] for key, rows in text.items()})


def write_multidigit(folder: Path, seed: int, *, cell: int = 16) -> None:
    """2x2 canvases of ``cell`` px digits in ``images/``, listed in ``train.csv``, ``test.csv`` and ``sources.csv``.

    The demo's cell is 16 (32 px canvases); ``benchmarks/image_sets.py`` writes 64 px ones with ``cell=32``.
    """
    pixels, labels = _digit_pixels(cell)
    pools = split_three(labels, (0.64, 0.16, 0.20), seed=seed)
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir()
    tables = []
    for split, pool in zip(("train", "valid", "test"), pools, strict=True):
        num = _MULTIDIGIT_SIZES[split]
        canvases, drawn = _draw_canvases(pool, labels=labels, pixels=pixels, num=num, rng=rng)
        drawn.insert(0, "fname", [f"images/{split}_{n:05d}.png" for n in range(num)])
        for fname, canvas in zip(drawn["fname"], canvases, strict=True):
            save_png(canvas, folder / fname)
        tables.append(drawn.assign(is_valid=split == "valid", split=split))
    table = pd.concat(tables, ignore_index=True)
    is_test = table["split"] == "test"
    write_csv(table.loc[~is_test, ["fname", "labels", "is_valid"]], folder / "train.csv")
    write_csv(table.loc[is_test, ["fname", "labels"]], folder / "test.csv")
    write_csv(table[["fname", "split", "sources"]], folder / "sources.csv")
