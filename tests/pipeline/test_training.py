"""The train stage: the options it trains with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import labelwise.train.trainer
from labelwise.options import FitOptions
from labelwise.pipeline.prepare import prepare
from labelwise.pipeline.training import train
from labelwise.train.config import TrainConfig


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 128, (32, 32)) + (127 if label == "light" else 0)
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "images" / label / f"{i}.png")
    return tmp_path / "images"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param({}, {"batch_size": 32, "epochs": 100}, id="the-recipe"),
        pytest.param({"batch_size": 8, "epochs": 2}, {"batch_size": 8, "epochs": 2}, id="given"),
    ],
)
def test_an_image_run_trains_with_the_recipe_batch_and_epochs_unless_given(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: dict[str, int], expected: dict[str, int]
) -> None:
    seen: list[TrainConfig] = []

    def fake_fit_network(*args: Any, config: TrainConfig, **kwargs: Any) -> None:
        seen.append(config)
        raise KeyboardInterrupt  # enough: the config is what this test reads

    monkeypatch.setattr(labelwise.train.trainer, "fit_network", fake_fit_network)
    options = FitOptions.from_keywords(**given)
    prepared = prepare(str(image_folder), options)
    (tmp_path / "run").mkdir()
    with pytest.raises(KeyboardInterrupt):
        train(prepared, options, run_dir=tmp_path / "run", resume=False, progress=False)
    assert {"batch_size": seen[0].batch_size, "epochs": seen[0].epochs} == expected
    assert options.train.batch_size == given.get("batch_size")  # the options themselves are left as given
