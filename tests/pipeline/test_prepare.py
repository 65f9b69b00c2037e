"""The prepare stage: any source becomes one `Prepared`, in memory or streamed, with the checks before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelwise.errors import ConfigError, DataError
from labelwise.options import FitOptions
from labelwise.pipeline.prepare import prepare
from labelwise.task import TaskKind


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "c": rng.choice(["x", "y"], 300)})
    return frame.assign(label=np.where(frame["a"] + frame["b"] > 0, "yes", "no"))


def test_a_table_in_memory_is_split_encoded_and_fingerprinted(table: pd.DataFrame) -> None:
    prepared = prepare(table, FitOptions.from_keywords(target="label", folds=1))
    assert prepared.task.kind is TaskKind.BINARY
    assert len(prepared.train) + len(prepared.valid) == len(table)
    assert len(prepared.valid_targets) == len(prepared.valid) == prepared.record["num_valid"]
    assert prepared.feature_columns == ("a", "b", "c")
    assert prepared.spec.backbone == "mlp"
    # The same data and options give the same fingerprint; another seed splits otherwise and gives another.
    assert prepare(table, FitOptions.from_keywords(target="label", folds=1)).fingerprint == prepared.fingerprint
    assert prepare(table, FitOptions.from_keywords(target="label", folds=1, seed=1)).fingerprint != prepared.fingerprint


def test_a_small_table_is_cross_fitted_by_default(table: pd.DataFrame) -> None:
    prepared = prepare(table, FitOptions.from_keywords(target="label"))
    assert prepared.folds is not None and set(prepared.folds.tolist()) == set(range(5))
    # Every row trains (in four members) and is predicted out of fold (by the fifth).
    assert len(prepared.train) == len(prepared.valid) == len(table) == len(prepared.valid_rows)
    assert prepared.record["split"].startswith("5-fold cross-fitting (auto: a table of 300 rows")


def test_a_streamed_parquet_table_prepares_to_the_same_fields(table: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    table.to_parquet(path)
    streamed = prepare(str(path), FitOptions.from_keywords(target="label", stream="on"))
    in_memory = prepare(str(path), FitOptions.from_keywords(target="label", stream="off"))
    assert streamed.task == in_memory.task
    assert streamed.feature_columns == in_memory.feature_columns
    assert streamed.fingerprint is None and in_memory.fingerprint is not None  # a stream cannot resume
    assert "streamed" in streamed.record and "streamed" not in in_memory.record
    assert streamed.valid_targets.dtype == in_memory.valid_targets.dtype


def test_resuming_a_streamed_run_is_refused_before_any_work(table: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    table.to_parquet(path)
    with pytest.raises(ConfigError, match="--resume with a streamed Parquet run.*pass --stream off"):
        prepare(str(path), FitOptions.from_keywords(target="label", stream="on"), resume=True)


def test_a_conformal_level_the_validation_rows_cannot_carry_is_refused(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"--conformal 0.999 needs at least \d+ validation items"):
        prepare(table.head(60), FitOptions.from_keywords(target="label", conformal=0.999))


def test_allow_none_on_a_forced_multilabel_task_is_refused(table: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="--allow-none with --task multilabel"):
        prepare(table, FitOptions.from_keywords(target="label", task="multilabel", allow_none="max_prob"))


def test_data_without_labels_is_refused_naming_the_option(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="the data has no labels; pass `target=`"):
        prepare(table.drop(columns="label"), FitOptions())


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/<class>/*.png: 40 grayscale 32x32 images of two classes."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        (root / label).mkdir()
        for i in range(20):
            pixels = rng.integers(0, 128, (32, 32)) + (127 if label == "light" else 0)
            Image.fromarray(pixels.astype(np.uint8)).save(root / label / f"{i}.png")
    return root


def test_an_image_run_takes_the_image_recipe(image_folder: Path) -> None:
    prepared = prepare(str(image_folder), FitOptions.from_keywords())
    recipe = prepared.recipe
    assert recipe is not None and prepared.spec.backbone == "cnn"
    assert dict(prepared.spec.options) == recipe.network == {"widths": [24, 48, 96], "pool": "avgmax"}
    assert prepared.record["image_recipe"] == recipe.to_dict()
    assert prepared.record["image_recipe"]["why"].startswith(f"{prepared.record['num_train']} training images of 32 px")
    assert prepared.inputs.image is not None and prepared.inputs.image.augment == recipe.augment == 1.0  # 100 epochs
    given = prepare(str(image_folder), FitOptions.from_keywords(epochs=16, batch_size=8)).recipe
    assert given is not None and (given.batch_size, given.epochs, given.augment) == (8, 16, 0.5)


def test_the_recipe_is_for_the_compact_cnn_on_images_alone(image_folder: Path, table: pd.DataFrame) -> None:
    assert prepare(str(image_folder), FitOptions.from_keywords(model="resnet18")).recipe is None
    assert prepare(table, FitOptions.from_keywords(target="label", folds=1)).recipe is None
