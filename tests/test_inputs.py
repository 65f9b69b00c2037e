"""Inputs by column: the encoder registry, the input groups and their combiner, the stored format (old and new)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import labelwise
from labelwise.data._kind_columns import BooleanColumn, DatetimeColumn, IgnoredColumn
from labelwise.data.images import ImageSpec
from labelwise.data.sources import load_source, source_from_frame
from labelwise.data.splits import Split
from labelwise.data.tables import CategoricalColumn, NumericColumn, TablePreprocessor
from labelwise.data.transforms import image_transforms
from labelwise.errors import ArtifactError, ConfigError, DataError
from labelwise.inputs import (
    ImageColumn,
    Inputs,
    Values,
    column_kinds,
    drop_unreadable,
    inputs_from_dict,
    register_column,
)
from labelwise.inputs.columns import column_from_dict
from labelwise.models import ModelSpec, create_network
from labelwise.models.combiner import ConcatBackbone
from labelwise.models.head import backbone_and_head
from labelwise.models.image_recipe import cnn_options
from labelwise.task import Task
from labelwise.train.batches import GroupedDataset, InMemoryDataset

FIXTURES = Path(__file__).parent / "fixtures"


def _mixed_frame(folder: Path, *, rows: int = 6) -> pd.DataFrame:
    """Rows of an image path (seeded 20x12 grayscale), a numeric and a categorical column, and a label."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(rows):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (12, 20), dtype=np.uint8), mode="L").save(path)
        paths.append(str(path))
    return pd.DataFrame(
        {
            "fname": paths,
            "x": np.arange(rows, dtype=float),
            "color": ["red", "blue"] * (rows // 2),
            "y": [0, 1] * (rows // 2),
        }
    )


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[pd.DataFrame, Inputs]:
    frame = _mixed_frame(tmp_path)
    source = source_from_frame(frame, target="y", image_col="fname")
    return frame, Inputs.fit(source, np.arange(len(frame)), image_size=16)


# -- the registry ------------------------------------------------------------------------------------------
def test_registry_lists_each_kind_once() -> None:
    assert column_kinds() == [
        "boolean", "categorical", "datetime", "ignored", "image", "numeric", "text", "tokenized_text"
    ]  # fmt: skip


def test_registering_another_class_under_a_taken_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"kind 'image' is already registered \(ImageColumn\)"):
        register_column("image", NumericColumn)


@pytest.mark.parametrize(
    "encoder",
    [
        pytest.param(NumericColumn(name="x", mean=1.5, std=2.0, fill=1.0, indicator=True), id="numeric"),
        pytest.param(CategoricalColumn(name="c", categories=("a", "b"), fill="a", indicator=False), id="categorical"),
        pytest.param(ImageColumn("fname", ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.2,))), id="image"),
        pytest.param(BooleanColumn(name="b", fill=1.0, indicator=True, why="two values"), id="boolean"),
        pytest.param(
            DatetimeColumn(name="d", mean=19000.0, std=30.0, fill=19001.0, hours=True, indicator=False), id="datetime"
        ),
        pytest.param(IgnoredColumn(name="id", kind="identifier", why="unique"), id="ignored"),
        pytest.param(
            CategoricalColumn(name="c", categories=("a",), fill="a", indicator=False, counts={"a": 3, "b": 1}),
            id="categorical-counts",
        ),
    ],
)
def test_each_kind_round_trips_through_json(encoder: object) -> None:
    stored = json.loads(json.dumps(encoder.to_dict()))  # type: ignore[attr-defined]
    assert column_from_dict(stored) == encoder


def test_unknown_column_kind_names_the_known_ones() -> None:
    with pytest.raises(
        ArtifactError,
        match=r"unknown column kind 'audio'.*\['boolean', 'categorical', .*'text', 'tokenized_text'\].*upgrade",
    ):
        column_from_dict({"type": "audio", "name": "notes"})


# -- groups ------------------------------------------------------------------------------------------------
def test_table_columns_form_one_features_group_as_the_table_preprocessor(tmp_path: Path) -> None:
    frame = _mixed_frame(tmp_path).drop(columns="fname")
    source = source_from_frame(frame, target="y")
    inputs = Inputs.fit(source, np.arange(4))
    reference = TablePreprocessor.fit(frame.iloc[:4], columns=["x", "color"])
    assert [group.key for group in inputs.groups] == ["features"] and inputs.image is None
    torch.testing.assert_close(inputs.encode(source).values.only, reference.transform(frame), rtol=0, atol=0)


def test_an_image_table_with_other_columns_has_two_groups(mixed: tuple[pd.DataFrame, Inputs]) -> None:
    frame, inputs = mixed
    encoded = inputs.encode(source_from_frame(frame, image_col="fname"))
    assert [group.key for group in inputs.groups] == ["features", "image"] and inputs.image_col == "fname"
    # x (its score and its bins), color=blue, color=red, color=<unseen>
    assert inputs.table is not None and inputs.table.feature_names[-3:] == ["color=blue", "color=red", "color=<unseen>"]
    assert encoded.values.parts["features"].shape == (6, inputs.table.num_features)
    assert encoded.values.parts["image"].shape == (6, 1, 16, 16) and encoded.values.parts["image"].dtype == torch.uint8
    assert encoded.kept.all() and encoded.skipped == []


def test_an_unreadable_image_drops_its_row_from_every_group(mixed: tuple[pd.DataFrame, Inputs]) -> None:
    frame, inputs = mixed
    Path(frame["fname"][2]).write_bytes(b"not an image")
    encoded = inputs.encode(source_from_frame(frame, image_col="fname"), skip_bad=True)
    assert encoded.kept.tolist() == [True, True, False, True, True, True]
    assert inputs.table is not None
    assert encoded.values.parts["features"][:, 0].tolist() == pytest.approx(
        inputs.table.specs[0].scale(np.array([0.0, 1.0, 3.0, 4.0, 5.0])).tolist()
    )
    assert len(encoded.values) == 5 and encoded.skipped[0][0] == frame["fname"][2]


def test_a_folder_given_to_a_table_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "table").mkdir()
    frame = _mixed_frame(tmp_path / "table")
    inputs = Inputs.fit(source_from_frame(frame, target="y", image_col="fname"), np.arange(6), image_size=16)
    (tmp_path / "folder" / "cat").mkdir(parents=True)
    shutil.copy(frame["fname"][0], tmp_path / "folder" / "cat" / "0.png")
    with pytest.raises(DataError, match="trained on a table, but the data given is a folder of images"):
        inputs.encode(load_source(tmp_path / "folder", for_training=False))


def test_two_columns_of_one_group_are_refused() -> None:
    image = ImageColumn("a", ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.2,)))
    with pytest.raises(ConfigError, match=r"several columns of one group \(\['image', 'image'\]\).*Keep one image"):
        Inputs((image, image))


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(torch.tensor([3, 0]), id="longtensor"),
        pytest.param(np.array([3, 0]), id="ndarray"),
        pytest.param(np.array([True, False, False, True, False, False]), id="mask"),
        pytest.param(slice(0, 4, 3), id="slice"),
    ],
)
def test_values_index_every_group_by_the_same_rows(rows: object) -> None:
    values = Values({"features": torch.arange(6.0).reshape(6, 1), "image": torch.arange(6).reshape(6, 1, 1, 1)})
    picked = values[rows]  # type: ignore[index]
    assert sorted(picked.parts["features"].flatten().tolist()) == [0.0, 3.0]
    assert sorted(picked.parts["image"].flatten().tolist()) == [0, 3] and len(picked) == 2


def test_values_of_different_lengths_are_refused() -> None:
    with pytest.raises(DataError, match="different numbers of rows"):
        Values({"features": torch.zeros(3, 1), "image": torch.zeros(2, 1, 4, 4)})


def test_drop_unreadable_renumbers_the_split() -> None:
    split = drop_unreadable(Split(np.array([0, 2, 4]), np.array([1, 3]), "test"), np.array([1, 0, 1, 1, 0], bool))
    assert split.train.tolist() == [0, 1] and split.valid.tolist() == [2]


# -- the combiner: datasets, batches, network ------------------------------------------------------------
def test_one_group_keeps_the_dataset_and_spec_of_a_plain_run(tmp_path: Path) -> None:
    frame = _mixed_frame(tmp_path)
    source = source_from_frame(frame[["fname", "y"]], target="y", image_col="fname")
    inputs = Inputs.fit(source, np.arange(6), image_size=16)
    values = inputs.encode(source).values
    data = inputs.dataset(values, torch.zeros(6), train=False)
    assert isinstance(data, InMemoryDataset) and data.inputs is values.only
    spec = inputs.model_spec("auto", values, pretrained=False)
    assert spec == ModelSpec(backbone="cnn", in_chans=1, image_size=16, options=cnn_options(16))
    expected = image_transforms(inputs.image.spec, train=False)(values.only[:2])  # type: ignore[union-attr]
    torch.testing.assert_close(inputs.batch_transform(values[:2]), expected, rtol=0, atol=0)


def test_several_groups_train_through_the_concat_backbone(mixed: tuple[pd.DataFrame, Inputs]) -> None:
    frame, inputs = mixed
    values = inputs.encode(source_from_frame(frame, image_col="fname")).values
    spec = inputs.model_spec("auto", values, pretrained=False)
    assert spec.backbone == "concat" and ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    network = create_network(spec, Task(kind="multiclass", classes=("a", "b", "c")))
    backbone, head = backbone_and_head(network)
    assert isinstance(backbone, ConcatBackbone) and list(backbone.parts) == ["features", "image"]
    data = inputs.dataset(values, torch.zeros(6), train=True)
    batch, _ = data[torch.tensor([0, 1, 2])]
    assert isinstance(data, GroupedDataset) and batch["image"].dtype == torch.float32
    assert network.eval()(inputs.batch_transform(values)).shape == (6, 3) and head.in_features == 128


def test_the_combined_backbone_names_missing_groups(mixed: tuple[pd.DataFrame, Inputs]) -> None:
    frame, inputs = mixed
    values = inputs.encode(source_from_frame(frame, image_col="fname")).values
    network = create_network(inputs.model_spec("auto", values, pretrained=False), Task(kind="binary", classes=(0, 1)))
    with pytest.raises(ConfigError, match=r"got inputs \['features'\] but needs \['features', 'image'\]"):
        network({"features": values.parts["features"]})


# -- the stored format -------------------------------------------------------------------------------------
def test_inputs_round_trip_through_json(mixed: tuple[pd.DataFrame, Inputs]) -> None:
    _, inputs = mixed
    stored = json.loads(json.dumps(inputs.to_dict()))
    assert stored["type"] == "columns" and [c["type"] for c in stored["columns"]] == ["numeric", "categorical", "image"]
    assert inputs_from_dict(stored) == inputs


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [
        pytest.param(
            {
                "type": "table",
                "columns": [{"type": "numeric", "name": "x", "mean": 1.0, "std": 2.0, "fill": 1.0, "indicator": False}],
            },
            Inputs((NumericColumn(name="x", mean=1.0, std=2.0, fill=1.0, indicator=False),)),
            id="table",
        ),
        pytest.param(
            {
                "type": "images",
                "image_col": "fname",
                "spec": {"size": 16, "channels": 3, "mean": [0.5] * 3, "std": [0.2] * 3},
            },
            Inputs((ImageColumn("fname", ImageSpec(size=16, channels=3, mean=(0.5,) * 3, std=(0.2,) * 3)),)),
            id="images",
        ),
    ],
)
def test_the_format_of_earlier_runs_is_read(legacy: dict[str, object], expected: Inputs) -> None:
    assert inputs_from_dict(legacy) == expected


def test_an_unknown_inputs_type_is_refused() -> None:
    with pytest.raises(ArtifactError, match=r"unknown preprocessing type 'audio'.*expected 'columns'"):
        inputs_from_dict({"type": "audio"})


def test_a_table_run_saved_before_columns_predicts_as_it_did(tmp_path: Path) -> None:
    """The run in fixtures/table-run was trained and saved by labelwise at commit 0d4eb8f (TableInputs)."""
    run = shutil.copytree(FIXTURES / "table-run", tmp_path / "run")
    clf = labelwise.load(run)
    probs = clf.predict_proba(run / "data.csv")
    expected = np.loadtxt(run / "probs.csv", delimiter=",", dtype=np.float32)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)  # probs.csv holds 9 significant digits
    assert [group.key for group in clf.inputs.groups] == ["features"]


def test_an_image_run_in_the_earlier_format_predicts_as_a_new_one(tmp_path: Path) -> None:
    frame = _mixed_frame(tmp_path, rows=20)[["fname", "y"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch on random images: the guards warn, as they should
        clf = labelwise.fit(frame, target="y", config=labelwise.TrainConfig(epochs=1), progress=False)
    run = clf.save(tmp_path / "run")
    meta = json.loads((run / "labelwise.json").read_text())
    image = meta["preprocessing"]["columns"][0]
    meta["preprocessing"] = {"type": "images", "image_col": image["name"], "spec": image["spec"]}  # as before #14
    (run / "labelwise.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(labelwise.load(run).predict_proba(frame), clf.predict_proba(frame))


# -- a table with an image column and other columns, end to end -------------------------------------------
def _digits_xor(folder: Path) -> pd.DataFrame:
    """Images of 3s and 4s (sklearn's digits) and a column ``x``; label = (digit is odd) XOR (x > 0).

    Neither the image nor ``x`` alone says anything about the label (each half of either goes either way), so only
    a model that reads both can beat chance.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in np.flatnonzero(np.isin(digits.target, [3, 4])):
        Image.fromarray((digits.images[i] * 16).clip(0, 255).astype(np.uint8)).save(folder / f"img/{i}.png")
        x = rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 2.0)
        rows.append({"fname": f"img/{i}.png", "x": x, "label": int((digits.target[i] % 2 == 1) ^ (x > 0))})
    return pd.DataFrame(rows)


def test_a_mixed_run_saves_loads_predicts_and_checks(tmp_path: Path) -> None:
    frame = _mixed_frame(tmp_path, rows=24).rename(columns={"y": "label"})
    frame["fname"] = [Path(p).name for p in frame["fname"]]  # relative to the table's folder
    frame.to_csv(tmp_path / "data.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch on random images: the guards warn, as they should
        clf = labelwise.fit(tmp_path / "data.csv", config=labelwise.TrainConfig(epochs=1), out=tmp_path / "run")
    loaded = labelwise.load(tmp_path / "run")
    assert [group.key for group in loaded.inputs.groups] == ["features", "image"]
    assert loaded.model_spec.backbone == "concat" and loaded.info["feature_columns"] == ["x", "color"]
    np.testing.assert_array_equal(loaded.predict_proba(tmp_path / "data.csv"), clf.predict_proba(tmp_path / "data.csv"))
    assert loaded.check(tmp_path / "data.csv", rows=8).checked


def test_a_mixed_run_is_refused_by_onnx_export_in_one_line(tmp_path: Path) -> None:
    from labelwise.export import export_onnx

    frame = _mixed_frame(tmp_path, rows=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = labelwise.fit(frame, target="y", config=labelwise.TrainConfig(epochs=1), progress=False)
    with pytest.raises(ConfigError, match=r"several input groups \(features, image.*--backend torch") as caught:
        export_onnx(clf, tmp_path / "model.onnx")
    assert "\n" not in str(caught.value) and not (tmp_path / "model.onnx").exists()


def test_a_mixed_run_serves_rows_with_base64_images(tmp_path: Path) -> None:
    import base64

    from fastapi.testclient import TestClient

    from labelwise.serve.app import create_app

    frame = _mixed_frame(tmp_path, rows=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = labelwise.fit(frame, target="y", config=labelwise.TrainConfig(epochs=1), progress=False)
    rows = [
        {"x": row.x, "color": row.color, "fname": base64.b64encode(Path(row.fname).read_bytes()).decode()}
        for row in frame.itertuples()
    ]
    with TestClient(create_app(clf)) as client:
        answer = client.post("/predict", json={"rows": rows})
        bad = client.post("/predict", json={"rows": [{**rows[0], "fname": "bm90IGFuIGltYWdl"}]})
        metadata = client.get("/metadata").json()["inputs"]
    served = np.array([[row["p:0"], row["p:1"]] for row in answer.json()["predictions"]])
    np.testing.assert_allclose(served, clf.predict_proba(frame), rtol=0, atol=1e-6)
    assert bad.status_code == 400 and "rows[0]['fname']" in bad.json()["error"]
    assert metadata["body"]["rows"][0]["fname"] == "<base64>"


@pytest.mark.slow
def test_a_mixed_table_learns_what_neither_the_image_nor_the_columns_learn(tmp_path: Path) -> None:
    """Measured (seed 0, 10 epochs, 264 training rows, 100 test rows): both 1.00, image 0.41, columns 0.42."""
    frame = _digits_xor(tmp_path)
    test, train = frame.iloc[:100], frame.iloc[100:]
    config = labelwise.TrainConfig(epochs=10, seed=0)
    accuracy = {}
    for name, columns in {"both": ["fname", "x"], "image": ["fname"], "columns": ["x"]}.items():
        train[[*columns, "label"]].to_csv(tmp_path / "train.csv", index=False)
        test[[*columns, "label"]].to_csv(tmp_path / "test.csv", index=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the one-part models cannot learn: the guards say so, rightly
            clf = labelwise.fit(tmp_path / "train.csv", config=config, progress=False)
            accuracy[name] = clf.evaluate(tmp_path / "test.csv")["accuracy"]
    assert accuracy["both"] >= 0.9, accuracy
    assert accuracy["image"] <= 0.65 and accuracy["columns"] <= 0.65, accuracy  # chance is 0.5 on 100 rows


def test_a_grouped_dataset_reads_item_by_item_as_rows(mixed: tuple[pd.DataFrame, Inputs]) -> None:
    frame, inputs = mixed
    values = inputs.encode(source_from_frame(frame, image_col="fname")).values
    data = inputs.dataset(values, torch.arange(6.0), train=False)
    items = list(data)  # what a loop over any Dataset does: data[0], data[1], ... until IndexError
    assert [float(target) for _, target in items] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert inputs.table is not None and items[0][0]["features"].shape == (inputs.table.num_features,)
    assert items[0][0]["image"].shape == (1, 16, 16)
