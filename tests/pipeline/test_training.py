"""The train stage: the options it trains with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import labelwise.pipeline.training
import labelwise.train.head_loss
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


def test_a_resumed_run_keeps_the_head_loss_auto_chose_by_timing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    import labelwise.huge.step_cost

    rng = np.random.default_rng(0)
    labels = np.repeat([f"c{i:02d}" for i in range(40)], 10)
    frame = pd.DataFrame({"x": rng.normal(size=len(labels)), "label": labels})
    # 40 classes >= 2 x 16 negatives: auto times a step. One model: cross-fitted members always train the full loss.
    options = FitOptions.from_keywords(num_sampled=16, balance="none", folds=1)
    prepared = prepare(frame, options)
    chosen: list[str] = []

    def fake_fit_network(*args: Any, loss: Any, **kwargs: Any) -> None:
        chosen.append(getattr(loss, "method", "full"))  # the full loss of a small head is the plain one
        raise KeyboardInterrupt

    def train_with(times: dict[str, float], run_dir: Path, *, resume: bool) -> str:
        monkeypatch.setattr(labelwise.huge.step_cost, "step_seconds", lambda name, **shape: times[name])
        run_dir.mkdir(exist_ok=True)
        with pytest.raises(KeyboardInterrupt):
            train(prepared, options, run_dir=run_dir, resume=resume, progress=False)
        return chosen[-1]

    monkeypatch.setattr(labelwise.train.trainer, "fit_network", fake_fit_network)
    assert train_with({"full": 1.0, "sampled": 0.1}, tmp_path / "run", resume=False) == "sampled"
    # The same run resumed where the timings now favour the full loss keeps the loss it trained with ...
    assert train_with({"full": 0.1, "sampled": 1.0}, tmp_path / "run", resume=True) == "sampled"
    # ... where a fresh run with those timings chooses the full loss.
    assert train_with({"full": 0.1, "sampled": 1.0}, tmp_path / "other", resume=False) == "full"


def test_cross_fitted_members_train_the_full_loss_whatever_timing_favours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    import labelwise.huge.step_cost

    labels = np.repeat([f"c{i:02d}" for i in range(40)], 10)
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=len(labels)), "label": labels})
    options = FitOptions.from_keywords(num_sampled=16, folds=5)
    monkeypatch.setattr(labelwise.huge.step_cost, "step_seconds", lambda name, **shape: {"full": 9.0}.get(name, 0.1))
    seen: list[Any] = []

    def fake_fit_bagged(*args: Any, loss: Any, **kwargs: Any) -> None:
        seen.append(loss)
        raise KeyboardInterrupt

    monkeypatch.setattr(labelwise.pipeline.training, "fit_bagged", fake_fit_bagged)
    with pytest.raises(KeyboardInterrupt):
        train(prepare(frame, options), options, run_dir=tmp_path, resume=False, progress=False)
    assert not isinstance(seen[0], labelwise.train.head_loss.HeadLoss)  # the plain cross-entropy


@pytest.mark.parametrize(("rows", "batch"), [(400, None), (20_000, 1024), (200_000, 1024)])
def test_a_sampled_head_trains_on_larger_batches_and_says_so(rows: int, batch: int | None) -> None:
    from labelwise.pipeline.training import _sampled_batches

    head = {"loss": "sampled", "reason": "measured."}
    config, said = _sampled_batches(TrainConfig(), head, num_rows=rows)
    assert config.batch_size == batch
    assert (said == head) == (batch is None)
    assert (
        batch is None
        or said["reason"]
        == f"measured. It trains on batches of {batch:,} rows: a sampled step "
        "costs mostly the update of the whole head, whatever the batch."
    )
    assert _sampled_batches(TrainConfig(batch_size=64), head, num_rows=rows)[0].batch_size == 64  # given: kept
    # Given epochs: larger batches would be fewer steps in the same passes (demo extreme's 3 epochs: P@1 0.915 -> 0.868)
    assert _sampled_batches(TrainConfig(epochs=3), head, num_rows=rows) == (TrainConfig(epochs=3), head)
