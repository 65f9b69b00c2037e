"""Image sets made without downloads, to measure the image defaults across sizes, kinds and item counts.

Each writer puts PNGs under ``ROOT/<name>/images/`` and two tables beside them: ``train.csv`` (``fname``, ``label``
or ``labels``, ``is_valid``) and ``test.csv``. Every set is seeded and rewritten only when missing.

====================  ==========  ======  =====  ===========  ==============================================
name                  kind        size    chans  train/valid  what
====================  ==========  ======  =====  ===========  ==============================================
multidigit64          multilabel  64 px   1      2400/600     the multidigit demo with 32 px digits (2x2 grid)
shapes64              multiclass  64 px   3      1600/400     a circle, square, triangle or cross of random
                                                              size, place and colour on a noisy, striped field
noisydigits48         binary      48 px   1      1600/400     one 16-24 px digit anywhere on a noisy canvas
                                                              with clutter strokes; odd or even
shapes96              multilabel  96 px   3      800/200      0-3 of circle, square, triangle in random
                                                              places on a noisy field
====================  ==========  ======  =====  ===========  ==============================================

The demos ``digits`` (32 px, multiclass, 1257/270) and ``multidigit`` (32 px, multilabel, 2400/600) come from
`labelwise.datasets.make_demo`; ``benchmarks/image_defaults.py`` trains on all of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from labelwise.datasets import make_demo

_SHAPES = ("circle", "square", "triangle", "cross")
_SPLITS = {"train": 0.64, "valid": 0.16, "test": 0.20}


def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    from labelwise.datasets._digits import _digit_pixels

    return _digit_pixels(size)


def _save(rows: list[dict[str, object]], images: list[np.ndarray], folder: Path) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for row, pixels in zip(rows, images, strict=True):
        Image.fromarray(pixels).save(folder / str(row["fname"]), format="PNG")
    table = pd.DataFrame(rows)
    train = table[table["split"] != "test"].assign(is_valid=lambda t: t["split"] == "valid")
    train.drop(columns="split").to_csv(folder / "train.csv", index=False)
    table[table["split"] == "test"].drop(columns="split").to_csv(folder / "test.csv", index=False)


def _split_names(num: int, rng: np.random.Generator) -> list[str]:
    counts = [round(num * f) for f in _SPLITS.values()]
    names = np.repeat(list(_SPLITS), counts)[:num]
    return list(rng.permutation(names))


def _noisy_field(size: int, rng: np.random.Generator, *, channels: int) -> np.ndarray:
    """A background: a random tint, a few faint stripes and pixel noise, uint8 ``(size, size, channels)``."""
    base = rng.uniform(40, 120, size=channels)
    field = np.broadcast_to(base, (size, size, channels)).astype(np.float32).copy()
    yy, xx = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 16)
    field += 15 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)[..., None]
    field += rng.normal(0, 18, size=field.shape)
    return field.clip(0, 255).astype(np.uint8)


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], colour: tuple[int, ...]
) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)
    else:  # cross
        w = (x1 - x0) / 3
        draw.rectangle((x0 + w, y0, x1 - w, y1), fill=colour)
        draw.rectangle((x0, y0 + w, x1, y1 - w), fill=colour)


def _bright_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    colour = rng.uniform(0, 255, size=3)
    colour[rng.integers(3)] = rng.uniform(200, 255)  # one strong channel: stands out from the dull field
    return (int(colour[0]), int(colour[1]), int(colour[2]))


def write_shapes64(folder: Path, seed: int) -> None:
    """2,000 + 500 test RGB 64 px images, one shape each (multiclass, 4 classes)."""
    rng = np.random.default_rng(seed)
    num, size = 2500, 64
    rows, images = [], []
    for n, split in enumerate(_split_names(num, rng)):
        shape = _SHAPES[n % len(_SHAPES)]
        image = Image.fromarray(_noisy_field(size, rng, channels=3))
        side = rng.uniform(14, 30)
        x0, y0 = rng.uniform(2, size - side - 2, size=2)
        _draw_shape(ImageDraw.Draw(image), shape, (x0, y0, x0 + side, y0 + side), _bright_colour(rng))
        rows.append({"fname": f"images/{n:05d}.png", "label": shape, "split": split})
        images.append(np.asarray(image))
    _save(rows, images, folder)


def write_shapes96(folder: Path, seed: int) -> None:
    """1,000 + 250 test RGB 96 px images holding 0-3 distinct shapes of circle/square/triangle (multilabel)."""
    rng = np.random.default_rng(seed)
    num, size, kinds = 1250, 96, _SHAPES[:3]
    rows, images = [], []
    for n, split in enumerate(_split_names(num, rng)):
        present = sorted(rng.choice(len(kinds), size=int(rng.integers(0, 4)), replace=False))
        image = Image.fromarray(_noisy_field(size, rng, channels=3))
        draw = ImageDraw.Draw(image)
        cells = rng.choice(9, size=len(present), replace=False)  # a 3x3 grid keeps shapes apart
        for k, cell in zip(present, cells, strict=True):
            side = rng.uniform(14, 26)
            row, col = divmod(int(cell), 3)
            x0 = col * 32 + rng.uniform(1, 31 - side)
            y0 = row * 32 + rng.uniform(1, 31 - side)
            _draw_shape(draw, kinds[k], (x0, y0, x0 + side, y0 + side), _bright_colour(rng))
        labels = " ".join(kinds[k] for k in present)
        rows.append({"fname": f"images/{n:05d}.png", "labels": labels, "split": split})
        images.append(np.asarray(image))
    _save(rows, images, folder)


def write_noisydigits48(folder: Path, seed: int) -> None:
    """2,000 + 500 test grayscale 48 px canvases with one digit (16-24 px) anywhere and clutter; odd or even."""
    rng = np.random.default_rng(seed)
    num, size = 2500, 48
    pixels, digits = _digits(24)
    rows, images = [], []
    for n, split in enumerate(_split_names(num, rng)):
        index = int(rng.integers(len(digits)))
        side = int(rng.integers(16, 25))
        digit = np.asarray(Image.fromarray(pixels[index]).resize((side, side), Image.Resampling.BILINEAR))
        canvas = Image.fromarray(_noisy_field(size, rng, channels=1)[..., 0])
        draw = ImageDraw.Draw(canvas)
        for _ in range(3):  # clutter strokes, dimmer than the digit
            x0, y0, x1, y1 = rng.uniform(0, size, size=4)
            draw.line((x0, y0, x1, y1), fill=int(rng.uniform(100, 170)), width=int(rng.integers(1, 3)))
        array = np.asarray(canvas).copy()
        x, y = rng.integers(0, size - side + 1, size=2)
        array[y : y + side, x : x + side] = np.maximum(array[y : y + side, x : x + side], digit)
        label = "odd" if digits[index] % 2 else "even"
        rows.append({"fname": f"images/{n:05d}.png", "label": label, "split": split})
        images.append(array)
    _save(rows, images, folder)


def write_multidigit64(folder: Path, seed: int) -> None:
    """The multidigit demo's canvases at 64 px (32 px digits), tables renamed to train.csv / test.csv."""
    from labelwise.datasets._digits import write_multidigit

    write_multidigit(folder, seed, cell=32)


# name -> (writer, target column, kind, headline metric)
SETS: dict[str, tuple[Callable[[Path, int], None], str, str]] = {
    "multidigit64": (write_multidigit64, "labels", "micro_f1"),
    "shapes64": (write_shapes64, "label", "accuracy"),
    "noisydigits48": (write_noisydigits48, "label", "accuracy"),
    "shapes96": (write_shapes96, "labels", "micro_f1"),
}
DEMOS = {"digits": "accuracy", "multidigit": "micro_f1"}


def make_set(name: str, root: Path, *, seed: int = 0) -> dict[str, object]:
    """Write (or reuse) the set ``name`` under ``root``; its train/test paths, target, image column and headline.

    A demo (``digits``, ``multidigit``) comes from `make_demo`; the rest from the writers above.
    """
    if name in DEMOS:
        demo = make_demo(name, root, seed=seed)
        target = demo.target[0] if demo.target else None
        return {"train": str(demo.train), "test": str(demo.test), "target": target, "image_col": demo.image_col,
                "headline": DEMOS[name]}  # fmt: skip
    writer, target, headline = SETS[name]
    folder = root / name
    done = folder / "done.json"
    if not done.exists() or json.loads(done.read_text()).get("seed") != seed:
        folder.mkdir(parents=True, exist_ok=True)
        writer(folder, seed)
        done.write_text(json.dumps({"seed": seed}))
    return {"train": str(folder / "train.csv"), "test": str(folder / "test.csv"), "target": target,
            "image_col": "fname", "headline": headline}  # fmt: skip
