"""Fixtures for the data tests: small images of every mode, written with PIL into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

MakeImage = Callable[..., Path]


def _pixels(mode: str, *, size: tuple[int, int], seed: int) -> Image.Image:
    """A seeded random image of ``mode`` and ``size`` (width, height)."""
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 4, (height, width), dtype=np.uint8), mode="L").convert("P")
        image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
        return image
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(array[..., 0] if channels == 1 else array, mode=mode)


@pytest.fixture
def make_image(tmp_path: Path) -> MakeImage:
    """``make_image("cat/1.png", mode="RGB", size=(20, 10), seed=0)`` writes an image under tmp_path."""

    def make(relative: str, *, mode: str = "RGB", size: tuple[int, int] = (20, 20), seed: int = 0) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _pixels(mode, size=size, seed=seed).save(path)
        return path

    return make


@pytest.fixture
def bad_files(tmp_path: Path, make_image: MakeImage) -> dict[str, Path]:
    """Unreadable files: a truncated PNG, a zero-byte file, a text file named .png, a path that does not exist."""
    good = make_image("bad/good.png", size=(64, 64))
    truncated = tmp_path / "bad" / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "bad" / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "bad" / "text.png"
    text.write_text("this is not an image\n")
    return {"truncated": truncated, "empty": empty, "text": text, "missing": tmp_path / "bad" / "missing.png"}
