"""ONNX export: parity with the torch path on every kind, `predict --backend onnx`, and every bad input."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

import labelwise
from _factories import make_table
from labelwise._files import _umask
from labelwise.classifier import Classifier
from labelwise.cli import main
from labelwise.data.sources import load_source
from labelwise.decide.conformal import ConformalSets
from labelwise.errors import ArtifactError, ConfigError, DataError
from labelwise.export import ONNX_FILE, export_onnx, load_onnx
from labelwise.models import ModelSpec, create_network
from labelwise.models.head import Network
from labelwise.models.registry import _REGISTRY, register_backbone
from labelwise.train import TrainConfig

# float32 networks evaluated by two runtimes; the bar the issue sets for probabilities and calibrated logits.
TOL = 1e-5
# run name -> (target column, fit options)
TABLE_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "binary": ("binary", {}),
    "multiclass": ("multiclass", {}),
    "multilabel": ("multilabel", {}),
    "multilabel-conformal": ("multilabel", {"conformal": 0.8}),  # threshold sets: deterministic, must match exactly
    "open-energy-conformal": ("multiclass", {"allow_none": "energy", "conformal": 0.8}),  # APS sets: randomized
    "open-one_vs_rest": ("multiclass", {"allow_none": "one_vs_rest"}),
    "open-energy": ("multiclass", {"allow_none": "energy"}),  # the reject rule decided in numpy (no conformal sets)
    "open-max_prob": ("binary", {"allow_none": "max_prob"}),
}
# Runs `predict --backend onnx` decides in torch: conformal sets are not repeated in numpy (export/_numpy_policy.py).
TORCH_DECIDED = {"multilabel-conformal", "open-energy-conformal"}


def _table(n: int = 160, *, seed: int = 0) -> pd.DataFrame:
    """The shared mixed table, with missing categories and a numeric column called ``features`` (the name of the
    traced network's input in a naive export), and a given validation split."""
    frame = make_table(n, seed=seed, second="features", missing_colors=True)
    return frame.assign(is_valid=np.arange(n) % 4 == 0)


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows to predict: the validation rows, plus one with an unseen category and one with every value missing."""
    valid = frame[frame["is_valid"]][["x0", "features", "color"]]
    extra = pd.DataFrame({"x0": [0.5, np.nan], "features": [-0.2, np.nan], "color": ["purple", None]})
    return pd.concat([valid, extra], ignore_index=True)


@pytest.fixture(scope="module")
def table_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Classifier, Path]]:
    """One tiny table run per kind and decision policy, each saved and exported to RUN/model.onnx."""
    root = tmp_path_factory.mktemp("export")
    frame = _table()
    targets = ["binary", "multiclass", "multilabel"]
    runs = {}
    for name, (target, options) in TABLE_RUNS.items():
        data = frame.drop(columns=[t for t in targets if t != target])
        run = root / name
        clf = labelwise.fit(data, target=target, config=TrainConfig(epochs=2), progress=False, out=run, **options)
        export_onnx(clf, run / ONNX_FILE)
        runs[name] = (clf, run)
    _features(frame).to_csv(root / "features.csv", index=False)
    return runs


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Classifier, Path, Path]:
    """A tiny CNN on a folder of 16x16 grayscale images of three classes (bright top, bright left, dark)."""
    root = tmp_path_factory.mktemp("export-images")
    rng = np.random.default_rng(0)
    for label in ("top", "left", "dark"):
        (root / "imgs" / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 80, (16, 16), dtype=np.uint8)
            if label == "top":
                pixels[:8] += 150
            elif label == "left":
                pixels[:, :8] += 150
            Image.fromarray(pixels).save(root / "imgs" / label / f"{i}.png")
    run = root / "run"
    clf = labelwise.fit(root / "imgs", config=TrainConfig(epochs=2), progress=False, out=run, model="cnn")
    export_onnx(clf, run / ONNX_FILE)
    return clf, run, root / "imgs"


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _torch_outputs(clf: Classifier, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities and logits of the torch path."""
    predicted = clf.predict_source(clf._source(data))
    return predicted.probs.numpy(), predicted.outputs.logits.numpy()


@pytest.mark.parametrize("name", list(TABLE_RUNS))
def test_table_onnx_matches_torch_on_validation_rows(table_runs: dict[str, tuple[Classifier, Path]], name: str) -> None:
    clf, run = table_runs[name]
    features = _features(_table())
    # The raw columns as a user of onnxruntime passes them: float64 with NaN, strings with "" for missing.
    feeds = {
        "x0": features["x0"].to_numpy(np.float64),
        "features": features["features"].to_numpy(np.float64),
        "color": features["color"].fillna("").to_numpy(dtype=object),
    }
    probs, logits = _session(run / ONNX_FILE).run(["probs", "logits"], feeds)
    expected_probs, expected_logits = _torch_outputs(clf, features)
    assert probs.shape == (len(features), len(clf.task.classes))
    np.testing.assert_allclose(probs, expected_probs, rtol=0, atol=TOL)
    # A confident logit (~21) carries float32's relative error: 1e-5 absolute is a few units in its last place.
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-6, atol=TOL)


def test_image_onnx_matches_torch_on_decoded_pixels(image_run: tuple[Classifier, Path, Path]) -> None:
    clf, run, images = image_run
    source = load_source(images, target=None, for_training=False)
    pixels = clf.inputs.encode(source).values.only
    probs, logits = _session(run / ONNX_FILE).run(["probs", "logits"], {"pixels": pixels.numpy()})
    expected_probs, expected_logits = _torch_outputs(clf, source)
    np.testing.assert_allclose(probs, expected_probs, rtol=0, atol=TOL)
    np.testing.assert_allclose(logits, expected_logits, rtol=0, atol=TOL)
    # Other sizes are resized inside the graph: a 2x upscaled batch still gives probabilities of the same shape.
    bigger = torch.nn.functional.interpolate(pixels.float(), scale_factor=2).to(torch.uint8).numpy()
    (resized,) = _session(run / ONNX_FILE).run(["probs"], {"pixels": bigger})
    assert resized.shape == probs.shape and np.allclose(resized.sum(axis=1), 1, atol=1e-6)


def _predict(run: Path, data: Path, out: Path, *extra: str) -> pd.DataFrame:
    assert main(["predict", str(run), str(data), "--out", str(out), *extra]) == 0
    return pd.read_csv(out, keep_default_na=False)


def _assert_same_predictions(
    torch_frame: pd.DataFrame,
    onnx_frame: pd.DataFrame,
    *,
    aps: ConformalSets | None = None,
    abstain_at: float | None = None,
) -> None:
    """Same columns, same decisions, scores within `TOL`. ``abstain_at``: the run's abstention threshold. It is one
    validation item's unknown score, and these rows include the validation rows, so that item sits on the threshold
    itself: runtimes whose scores differ in the last bits may decide it either way. Only such rows may differ."""
    assert list(onnx_frame.columns) == list(torch_frame.columns)
    scores = [c for c in torch_frame.columns if c.startswith("p:") or c == "unknown_score"]
    exact = [c for c in torch_frame.columns if c not in scores and not (aps is not None and c == "set")]
    if abstain_at is not None:
        on_the_edge = np.abs(torch_frame["unknown_score"].to_numpy(float) - abstain_at) <= TOL
        assert on_the_edge.sum() <= 2, on_the_edge.sum()  # one validation item, or two tied ones
        torch_frame, onnx_frame = torch_frame[~on_the_edge], onnx_frame[~on_the_edge]
    pd.testing.assert_frame_equal(onnx_frame[exact], torch_frame[exact])
    np.testing.assert_allclose(onnx_frame[scores].to_numpy(float), torch_frame[scores].to_numpy(float), atol=TOL)
    if aps is not None:
        _assert_sets_differ_only_by_randomization(torch_frame, onnx_frame, aps)


def _assert_sets_differ_only_by_randomization(expected: pd.DataFrame, got: pd.DataFrame, aps: ConformalSets) -> None:
    """APS draws each item's ``u`` from a hash of its probabilities' exact float32 bits, so a 1-ulp difference between
    runtimes re-draws it: a class may then flip only where ``u`` decides, i.e. when the mass ranked above it is
    within the cutoff but that mass plus its own probability is not. Everything else must match."""
    probs = expected.filter(like="p:").to_numpy(float)
    ordered = np.sort(probs, axis=1)[:, ::-1]
    above = np.cumsum(ordered, axis=1) - ordered
    for i in np.flatnonzero(expected["set"].to_numpy() != got["set"].to_numpy()):
        sure = [p for p, a in zip(ordered[i], above[i], strict=True) if a + p <= aps.qhat - TOL]
        never = [p for p, a in zip(ordered[i], above[i], strict=True) if a > aps.qhat + TOL]
        assert len(sure) + len(never) < probs.shape[1], (i, expected.loc[i, "set"], got.loc[i, "set"])
    assert (expected["set"] != got["set"]).mean() < 0.5  # a systematic difference would differ almost everywhere


@pytest.mark.parametrize("name", list(TABLE_RUNS))
def test_predict_backend_onnx_writes_the_torch_decisions(
    table_runs: dict[str, tuple[Classifier, Path]], name: str, tmp_path: Path
) -> None:
    clf, run = table_runs[name]
    data = run.parent / "features.csv"
    aps = clf.policy.conformal if clf.policy.conformal and clf.policy.conformal.method != "threshold" else None
    edge = None if clf.policy.abstention is None else clf.policy.abstention.threshold
    expected = _predict(run, data, tmp_path / "torch.csv")
    onnx_run = _predict(run, data, tmp_path / "run.csv", "--backend", "onnx")
    _assert_same_predictions(expected, onnx_run, aps=aps, abstain_at=edge)
    by_file = _predict(run / ONNX_FILE, data, tmp_path / "file.csv", "--backend", "onnx")
    _assert_same_predictions(expected, by_file, aps=aps, abstain_at=edge)
    if name in ("open-energy-conformal", "open-energy"):
        assert {"abstained", "unknown_score"} <= set(expected.columns)
        top_k = ("--top-k", "2")
        onnx_top = _predict(run, data, tmp_path / "k.csv", "--backend", "onnx", *top_k)
        _assert_same_predictions(_predict(run, data, tmp_path / "tk.csv", *top_k), onnx_top, abstain_at=edge)


def test_image_predict_backend_onnx_writes_the_torch_decisions(
    image_run: tuple[Classifier, Path, Path], tmp_path: Path
) -> None:
    _, run, images = image_run
    expected = _predict(run, images, tmp_path / "torch.csv")
    _assert_same_predictions(expected, _predict(run, images, tmp_path / "onnx.csv", "--backend", "onnx"))


def test_metadata_holds_the_run_and_a_future_format_is_refused(
    table_runs: dict[str, tuple[Classifier, Path]], tmp_path: Path
) -> None:
    clf, run = table_runs["open-energy-conformal"]
    model = onnx.load(str(run / ONNX_FILE))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["labelwise.format_version"] == "1"
    assert props["labelwise.classes"] == '["a", "b", "c"]'
    loaded = load_onnx(run / ONNX_FILE)
    assert loaded.task == clf.task and loaded.policy == clf.policy
    assert [i.name for i in model.graph.input] == ["x0", "features", "color"]
    assert [o.name for o in model.graph.output] == ["probs", "logits"]
    for prop in model.metadata_props:
        if prop.key == "labelwise.format_version":
            prop.value = "99"
    future = tmp_path / "future.onnx"
    onnx.save(model, str(future))
    with pytest.raises(ArtifactError, match=r"format version '99'; this labelwise reads version 1\. Upgrade"):
        load_onnx(future)


@pytest.fixture
def _eig_backbone() -> Iterator[str]:
    """A user backbone built on `torch.linalg.eigvals`, which has no ONNX equivalent."""

    class Eig(nn.Module):
        def __init__(self, in_features: int) -> None:
            super().__init__()
            self.linear, self.num_features = nn.Linear(in_features, 4), 4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = self.linear(x)
            out: torch.Tensor = z + torch.linalg.eigvals(z.T @ z).real[None, :]
            return out

    @register_backbone("test_export_eig")
    def _build(*, in_features: int, in_chans: int | None, pretrained: bool) -> nn.Module:
        return Eig(in_features)

    yield "test_export_eig"
    _REGISTRY.pop("test_export_eig")


def test_untraceable_backbone_is_one_line_naming_the_op_and_writes_nothing(
    table_runs: dict[str, tuple[Classifier, Path]], tmp_path: Path, _eig_backbone: str, capsys: Any
) -> None:
    clf, _ = table_runs["binary"]
    spec = ModelSpec(backbone=_eig_backbone, in_features=clf.inputs.num_features)
    custom = dataclasses.replace(clf, network=create_network(spec, clf.task), model_spec=spec)
    custom.save(tmp_path / "run")
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert main(["export", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labelwise: error: cannot export the network of backbone")
    assert "`aten.linalg_eig` has no ONNX equivalent" in err[0] and "--backend torch" in err[0]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before


class _Branch(nn.Module):
    num_features = 3

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z: torch.Tensor = self.linear(x)
        if z.sum() > 0:
            return z
        return -z


def test_data_dependent_branch_names_the_line(table_runs: dict[str, tuple[Classifier, Path]], tmp_path: Path) -> None:
    clf, _ = table_runs["binary"]
    network = Network(_Branch(int(clf.inputs.num_features or 0)), num_features=3, head_width=clf.task.head_width)
    with pytest.raises(ArtifactError, match=r"Python branch on tensor values at test_export\.py:\d+ \(`if z\.sum"):
        export_onnx(dataclasses.replace(clf, network=network), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["export", "{root}/nope"], r"'.*nope' does not exist; expected a run directory", id="no-run"),
        pytest.param(
            ["export", "{run}", "--out", "{root}/missing/m.onnx"], "folder of --out .* does not exist", id="no-folder"
        ),
        pytest.param(["export", "{run}", "--out", "{root}"], "is a folder; expected a file name", id="out-is-dir"),
        pytest.param(["export", "{run}", "--opset", "13"], r"opset=13; expected an int >= 18", id="old-opset"),
        pytest.param(
            ["predict", "{root}/nope", "{data}", "--backend", "onnx"], "no file or folder at", id="predict-no-run"
        ),
        pytest.param(
            ["predict", "{bare}", "{data}", "--backend", "onnx"], r"no model\.onnx.*labelwise export", id="no-onnx"
        ),
        pytest.param(["predict", "{junk}", "{data}", "--backend", "onnx"], "onnxruntime cannot read", id="not-onnx"),
        pytest.param(
            ["predict", "{stale}", "{data}", "--backend", "onnx"], "exported from other weights", id="stale-export"
        ),
        pytest.param(
            ["predict", "{run}", "{lacking}", "--backend", "onnx"], "lacks 1 feature column.*'features'", id="cols"
        ),
        pytest.param(["predict", "{run}", "{text}", "--backend", "onnx"], "not numbers: 'x0' in row 0", id="text"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    table_runs: dict[str, tuple[Classifier, Path]],
    tmp_path: Path,
    capsys: Any,
    args: list[str],
    message: str,
) -> None:
    _, run = table_runs["binary"]
    paths = {"root": tmp_path, "run": run, "data": run.parent / "features.csv", "bare": tmp_path / "bare"}
    shutil.copytree(run, paths["bare"], ignore=shutil.ignore_patterns(ONNX_FILE))
    paths["junk"] = tmp_path / "junk.onnx"
    paths["junk"].write_bytes(b"not a protobuf at all")
    paths["stale"] = tmp_path / "stale"
    shutil.copytree(table_runs["multiclass"][1], paths["stale"])
    shutil.copy(run / ONNX_FILE, paths["stale"] / ONNX_FILE)  # the binary run's export beside other weights
    paths["lacking"] = tmp_path / "lacking.csv"
    pd.DataFrame({"x0": [1.0], "color": ["red"]}).to_csv(paths["lacking"], index=False)
    paths["text"] = tmp_path / "text.csv"
    text = pd.DataFrame({"x0": ["oops", "1"], "features": [1.0, 2.0], "color": ["red", "red"]})
    text.to_csv(paths["text"], index=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    stamp = (run / ONNX_FILE).stat().st_mtime_ns
    out = tmp_path / "pred.csv"
    argv = [a.format(**paths) for a in args] + (["--out", str(out)] if args[0] == "predict" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labelwise: error: "), err
    assert re.search(message, err[0]), err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temp file left behind
    assert (run / ONNX_FILE).stat().st_mtime_ns == stamp


def test_export_default_out_is_run_model_onnx(table_runs: dict[str, tuple[Classifier, Path]], tmp_path: Path) -> None:
    _, run = table_runs["binary"]
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(ONNX_FILE))
    assert main(["export", str(copy)]) == 0
    assert (copy / ONNX_FILE).is_file() and not [p for p in copy.iterdir() if p.name.endswith(".tmp")]
    assert (copy / ONNX_FILE).stat().st_mode & 0o777 == 0o666 & ~_umask()  # readable like any file, not 0600
    (tmp_path / "imgs").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "imgs" / "a.png")
    images = load_source(tmp_path / "imgs", target=None, for_training=False)
    with pytest.raises(DataError, match="trained on a table, but the data given is a folder of images"):
        load_onnx(copy).predictions_frame(images)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        pytest.param("c", ["", "a", "b", "a"], r"'c' has the empty string as a category.*replace '' in", id="empty"),
        pytest.param("logits", [0.0, 1.0, 2.0, 3.0], r"'logits' would share a name with the ONNX outputs", id="name"),
    ],
)
def test_columns_the_onnx_inputs_cannot_spell_are_refused(
    tmp_path: Path, column: str, values: list[Any], message: str
) -> None:
    frame = pd.DataFrame({column: values * 25, "y": ["p", "q", "p", "q"] * 25})
    clf = labelwise.fit(frame, target="y", config=TrainConfig(epochs=1), progress=False)
    with pytest.raises(ConfigError, match=message):
        export_onnx(clf, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_boolean_frequency_and_left_out_columns_export_and_match_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("labelwise.data._columns.MAX_ONE_HOT", 3)  # "shop" one-hots 3 values, the rest by frequency
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({
        "row_id": np.arange(n), "member": rng.choice(["yes", "no"], n), "shop": rng.choice(list("abcdefg"), n),
        "x": rng.normal(size=n), "y": rng.choice(["p", "q"], n),
    })  # fmt: skip
    clf = labelwise.fit(frame, target="y", config=TrainConfig(epochs=2), progress=False)
    assert {k: v["kind"] for k, v in clf.inputs.kinds.items()} == {
        "row_id": "identifier", "member": "boolean", "shop": "categorical", "x": "numeric",
    }  # fmt: skip
    export_onnx(clf, tmp_path / "m.onnx")
    rows = frame.drop(columns=["y", "row_id"]).head(20).assign(member=["Y", "N", "true", "0", None] * 4)
    feeds = {
        "member": rows["member"].map({"Y": 1.0, "N": 0.0, "true": 1.0, "0": 0.0}).to_numpy(np.float64),
        "shop": rows["shop"].to_numpy(dtype=object),
        "x": rows["x"].to_numpy(np.float64),
    }
    assert {i.name for i in _session(tmp_path / "m.onnx").get_inputs()} == set(feeds)  # no input for the id
    probs, logits = _session(tmp_path / "m.onnx").run(["probs", "logits"], feeds)
    expected_probs, expected_logits = _torch_outputs(clf, rows)
    np.testing.assert_allclose(logits, expected_logits, rtol=0, atol=TOL)
    np.testing.assert_allclose(probs, expected_probs, rtol=0, atol=TOL)
    from labelwise.data.sources import source_from_frame

    runtime = load_onnx(tmp_path / "m.onnx").predictions_frame(source_from_frame(rows))  # reads every spelling
    columns = [f"p:{c}" for c in clf.task.classes]
    np.testing.assert_allclose(runtime[columns].to_numpy(), expected_probs, rtol=0, atol=TOL)


def test_a_date_column_is_refused_by_export_in_one_line(tmp_path: Path) -> None:
    dates = pd.date_range("2024-01-01", periods=100).strftime("%Y-%m-%d")
    frame = pd.DataFrame({"when": dates, "x": np.arange(100) % 7, "y": ["p", "q"] * 50})
    clf = labelwise.fit(frame, target="y", config=TrainConfig(epochs=1), progress=False)
    with pytest.raises(ConfigError, match=r"date/time column\(s\) 'when' become calendar features.*--column-kinds"):
        export_onnx(clf, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


_PREDICT_PROBE = """
import json, sys
from labelwise.cli import main
main({argv!r})
print(json.dumps("torch" in sys.modules))
"""


@pytest.mark.parametrize("name", list(TABLE_RUNS))
def test_predict_backend_onnx_on_a_table_imports_no_torch(
    table_runs: dict[str, tuple[Classifier, Path]], name: str, tmp_path: Path
) -> None:
    # A one-off `predict --backend onnx` on a table is onnxruntime, numpy and pandas; torch's import was most of its
    # time and memory. Runs with conformal sets still decide in torch (TORCH_DECIDED), and say so by importing it.
    clf, run = table_runs[name]
    data = run.parent / "features.csv"
    argv = ["predict", str(run), str(data), "--out", str(tmp_path / "onnx.csv"), "--backend", "onnx"]
    probe = [sys.executable, "-c", _PREDICT_PROBE.format(argv=argv)]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) is (name in TORCH_DECIDED)
    expected = _predict(run, data, tmp_path / "torch.csv")
    got = pd.read_csv(tmp_path / "onnx.csv", keep_default_na=False)
    aps = clf.policy.conformal if clf.policy.conformal and clf.policy.conformal.method != "threshold" else None
    edge = None if clf.policy.abstention is None else clf.policy.abstention.threshold
    _assert_same_predictions(expected, got, aps=aps, abstain_at=edge)
