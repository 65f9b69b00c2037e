"""labelwise.fit end to end: the three kinds as one matrix, and real small runs that must reach stated quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
import torch

import labelwise
from labelwise.data.sources import load_source
from labelwise.datasets import make_demo, make_imbalanced_cancer
from labelwise.datasets._digits import write_multidigit
from labelwise.decide import fit_conformal, set_metrics
from labelwise.metrics import compute_metrics
from labelwise.task import Task, TaskKind
from labelwise.train import TrainConfig

# Three epochs teach a model little: the guards (tested in tests/train/test_guards.py) would warn that it collapsed.
FAST = TrainConfig(epochs=3, seed=0, guards="off")


def _frame(kind: TaskKind, n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Learnable synthetic table whose `label` column spells the given kind."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    if kind is TaskKind.BINARY:
        label = np.where(x[:, 0] > 0, "pos", "neg")
    elif kind is TaskKind.MULTICLASS:
        label = np.array(["a", "b", "c"])[np.digitize(x[:, 0], [-0.5, 0.5])]
    else:
        label = [" ".join(t for t, on in (("x", x[i, 0] > 0), ("y", x[i, 1] > 0.3)) if on) for i in range(n)]
    return pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"]).assign(cat=rng.choice(["u", "v"], n), label=label)


def test_fit_save_load_gives_identical_predictions(kind: TaskKind, tmp_path: Path) -> None:
    frame = _frame(kind)
    clf = labelwise.fit(frame, target="label", config=FAST, progress=False, out=tmp_path / "run")
    assert clf.task.kind is kind
    loaded = labelwise.load(tmp_path / "run")
    new = _frame(kind, n=50, seed=1).drop(columns=["label"])
    np.testing.assert_array_equal(clf.predict_proba(new), loaded.predict_proba(new))
    assert clf.predict(new) == loaded.predict(new)
    assert loaded.policy == clf.policy and loaded.task == clf.task


def test_predict_proba_columns_follow_the_task(kind: TaskKind) -> None:
    clf = labelwise.fit(_frame(kind), target="label", config=FAST, progress=False)
    probs = clf.predict_proba(_frame(kind, n=20, seed=2))
    assert probs.shape == (20, clf.task.num_classes)
    if kind is not TaskKind.MULTILABEL:
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


DECISIONS = {
    TaskKind.BINARY: [{"metric": "recall@precision:0.8"}, {"allow_none": "max_prob", "coverage": 0.9}],
    TaskKind.MULTICLASS: [{"allow_none": "energy", "top_k": 2}, {"allow_none": "one_vs_rest", "conformal": 0.8}],
    TaskKind.MULTILABEL: [{"metric": "fbeta:2", "conformal": 0.9}],
}


def test_every_decision_option_travels_in_the_artifact(kind: TaskKind, tmp_path: Path) -> None:
    """predict, evaluate and a reloaded run apply one policy: identical predictions.csv, decision extras included."""
    new = _frame(kind, n=60, seed=4)
    source = labelwise.data.sources.source_from_frame(new.drop(columns=["label"]), target=None, image_col=None)
    for i, options in enumerate(DECISIONS[kind]):
        run = tmp_path / f"run{i}"
        clf = labelwise.fit(_frame(kind), target="label", config=FAST, progress=False, out=run, **options)  # type: ignore[arg-type]
        frame = clf.predictions_frame(source)
        pd.testing.assert_frame_equal(labelwise.load(run).predictions_frame(source), frame)
        assert ("unknown_score" in frame) is ("allow_none" in options)
        assert ("set" in frame) is ("conformal" in options or "top_k" in options)
        _assert_abstained_rows_predict_nothing(frame, clf.task)
        metrics = clf.evaluate(new)
        assert ("set_coverage" in metrics) is ("set" in frame) and "ece_uncalibrated" in metrics


def _assert_abstained_rows_predict_nothing(frame: pd.DataFrame, task: Task) -> None:
    """Every abstained row predicts "" and every answered one a label: a class name (multilabel: a set of them)."""
    abstained = frame["abstained"].to_numpy(dtype=bool)
    predictions = frame["prediction"]
    assert (predictions[abstained] == "").all(), predictions[abstained]
    names = {str(name) for name in task.classes}
    if task.kind is TaskKind.MULTILABEL:
        # An empty set is an answer here ("none of the labels"), which is why a multilabel run never abstains.
        assert not abstained.any()
        assert all(set(p.split()) <= names for p in predictions), predictions
    else:
        assert predictions[~abstained].isin(names).all(), predictions[~abstained]


def test_abstained_row_check_fails_on_a_labelled_abstention() -> None:
    """The check above can fail: an abstained row with a label, and an answered row without one."""
    task = Task(kind=TaskKind.MULTICLASS, classes=("a", "b", "c"))
    good = pd.DataFrame({"prediction": ["a", "", "c"], "abstained": [False, True, False]})
    _assert_abstained_rows_predict_nothing(good, task)
    for bad in (good.assign(prediction=["a", "b", "c"]), good.assign(abstained=[False, False, False])):
        with pytest.raises(AssertionError):
            _assert_abstained_rows_predict_nothing(bad, task)


def test_evaluate_takes_unseen_classes_as_unknown_only_when_the_model_may_abstain() -> None:
    train = _frame(TaskKind.MULTICLASS, n=300)
    test = _frame(TaskKind.MULTICLASS, n=120, seed=5)
    test.loc[test.index[:30], "label"] = "zebra"
    # On the b|c boundary: a softmax score flags the ambiguous; far from the data it would be confidently wrong
    # (the third seed article's point), which is why the unknown detector is measured, not assumed.
    test.loc[test.index[:30], "f0"] = 0.5
    clf = labelwise.fit(train, target="label", allow_none="max_prob", config=FAST, progress=False)
    metrics = clf.evaluate(test)
    assert metrics["unknown_items"] == 30
    # The detector metric is scikit-learn's AUROC of the unknown scores `predict` reports, unknown = positive.
    # How good a detector is gets its bar in the slow openset test below; three epochs on this table score ~0.65.
    source = labelwise.data.sources.source_from_frame(test.drop(columns=["label"]), target=None, image_col=None)
    scores = clf.predictions_frame(source)["unknown_score"].to_numpy()
    is_zebra = (test["label"] == "zebra").to_numpy()
    # labelwise's AUROC comes out of a float32 computation, sklearn's float64: they agree to float32 precision.
    assert metrics["unknown_auroc"] == pytest.approx(skm.roc_auc_score(is_zebra, scores), abs=1e-6)
    assert metrics["unknown_auroc"] > 0.5  # better than chance even after three epochs (measured: 0.65)
    assert {"unknown_fpr95", "unknown_rejected", "coverage", "selective_accuracy", "aurc"} <= set(metrics)
    only_unknown = clf.evaluate(test.iloc[:30])  # nothing to classify, only something to reject
    assert only_unknown["unknown_items"] == 30 and "unknown_rejected" in only_unknown and "accuracy" not in only_unknown
    plain = labelwise.fit(train, target="label", config=FAST, progress=False)
    with pytest.raises(labelwise.LabelError, match="zebra"):
        plain.evaluate(test)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"task": "multilabel", "allow_none": "max_prob"}, "already answers none", id="multilabel"),
        pytest.param({"allow_none": "max_prob", "coverage": 1.5}, r"expected a fraction in \(0, 1\)", id="coverage"),
        pytest.param({"metric": "f3"}, "metric", id="metric"),
        pytest.param({"conformal": 0.99, "folds": 1}, r"needs at least 99 validation items.*holds 48", id="conformal"),
    ],
)
def test_bad_decision_options_fail_before_anything_is_written(
    options: dict[str, object], match: str, tmp_path: Path
) -> None:
    with pytest.raises(labelwise.LabelwiseError, match=match):
        labelwise.fit(
            _frame(TaskKind.MULTICLASS), target="label", config=FAST, progress=False, out=tmp_path / "run", **options
        )  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# -- quality bars (fixed seed; the test split is never seen in training or tuning) -----------------------------
@pytest.mark.slow
def test_digits_accuracy_calibration_and_conformal_coverage(tmp_path: Path) -> None:
    demo = make_demo("digits", tmp_path, seed=0)
    clf = labelwise.fit(demo.train, config=TrainConfig(seed=0), progress=False)
    metrics = clf.evaluate(demo.test)
    assert metrics["accuracy"] >= 0.99  # issue 17's bar; measured 0.9963 (the image recipe: 16 epochs)
    assert metrics["ece"] <= 0.03 and metrics["ece"] <= metrics["ece_uncalibrated"]
    # Conformal sets at three levels from the one trained network. Split conformal promises the level on average
    # over the draw of the calibration rows: one draw of ~250 calibration and 270 test items alone misses it by
    # 0.03 or more now and then (a 2-3 sigma event, seen at 0.9). So: the validation and test rows (neither seen
    # in training) pooled, 40 seeded re-draws into halves, the mean coverage within 0.02 of the level.
    trainval = load_source(demo.train, for_training=False)
    test = load_source(demo.test, for_training=False)
    probs = torch.cat(
        [clf.predict_source(trainval).probs[np.flatnonzero(trainval.is_valid)], clf.predict_source(test).probs]
    )
    targets = torch.cat([clf.task.encode(trainval.labels[trainval.is_valid]), clf.task.encode(test.labels)])
    generator = torch.Generator().manual_seed(0)
    for level in (0.8, 0.9, 0.95):
        coverages = []
        for _ in range(40):
            order = torch.randperm(len(targets), generator=generator)
            cal, held = order[: len(order) // 2], order[len(order) // 2 :]
            conformal = fit_conformal(probs[cal], targets[cal], clf.task, level=level)
            coverages.append(set_metrics(conformal.sets(probs[held]), targets[held], clf.task)["set_coverage"])
        assert abs(float(np.mean(coverages)) - level) <= 0.02, (level, np.mean(coverages))


@pytest.mark.slow
@pytest.mark.parametrize("allow_none", ["max_prob", "energy"])
def test_openset_known_accuracy_and_unknown_detection(allow_none: str, tmp_path: Path) -> None:
    """Digits 6-9 never seen in training must be told from 0-5: AUROC 0.95, where chance is 0.5.

    Measured at seed 0: max_prob 0.982 (this test's setup), energy 0.984 (README, benchmarks/openset.py).
    """
    demo = make_demo("openset", tmp_path, seed=0)
    clf = labelwise.fit(demo.train, allow_none=allow_none, config=TrainConfig(seed=0), progress=False)
    metrics = clf.evaluate(demo.test)
    assert metrics["accuracy"] >= 0.98 and metrics["unknown_auroc"] >= 0.95


@pytest.mark.slow
def test_cancer_roc_auc(tmp_path: Path) -> None:
    demo = make_demo("cancer", tmp_path, seed=0)
    clf = labelwise.fit(demo.train, target=demo.target, config=TrainConfig(seed=0), progress=False)
    assert clf.evaluate(demo.test)["roc_auc"] >= 0.99


@pytest.mark.slow
def test_multidigit_micro_f1_and_empty_canvases(tmp_path: Path) -> None:
    demo = make_demo("multidigit", tmp_path, seed=0)
    clf = labelwise.fit(
        demo.train, target=demo.target, image_col=demo.image_col, config=TrainConfig(seed=0), progress=False
    )
    test = pd.read_csv(demo.test, keep_default_na=False)
    metrics = clf.evaluate(demo.test)
    assert metrics["micro_f1"] >= 0.97
    predicted = clf.predict(demo.test)  # a path: image paths resolve against the table's folder
    empty = [pred == () for pred, truth in zip(predicted, test["labels"], strict=True) if truth == ""]
    assert np.mean(empty) >= 0.90
    # Thresholds tuned per label on validation beat the arbitrary 0.5 on the test split.
    probs = clf.predict_source(load_source(demo.test, target=demo.target, for_training=False)).probs
    targets = clf.task.encode(test["labels"])
    at_half = compute_metrics(probs, targets, clf.task, decisions=probs >= 0.5)["macro_f1"]
    assert metrics["macro_f1"] >= at_half


@pytest.mark.slow
def test_64px_multidigit_canvases_need_the_receptive_field_the_recipe_gives(tmp_path: Path) -> None:
    """2x2 digits of 32 px on 64 px canvases: the image recipe's four halvings see them whole.

    Measured (seed 0): test micro-F1 0.99 with the recipe (10 epochs); the fixed three halvings of before saw 21 px
    of 64 and reached 0.85 in 20 epochs.
    """
    write_multidigit(tmp_path, 0, cell=32)
    clf = labelwise.fit(
        tmp_path / "train.csv", target="labels", image_col="fname", config=TrainConfig(seed=0), progress=False
    )
    assert clf.model_spec.options["widths"] == [24, 48, 96, 192]
    assert clf.evaluate(tmp_path / "test.csv")["micro_f1"] >= 0.97


@pytest.mark.slow
def test_imbalanced_binary_does_not_collapse(tmp_path: Path) -> None:
    """Trained on 10% of the malignant rows, the model must still find the minority class."""
    demo = make_imbalanced_cancer(tmp_path, positive_fraction=0.1, seed=0)
    with pytest.warns(labelwise.DataWarning, match="3 positive and 57 negative"):  # too few to tune: stays 0.5
        clf = labelwise.fit(demo.train, target=demo.target, config=TrainConfig(seed=0), progress=False)
    assert "weighting" in clf.info["training"]["balance"]
    # The imbalanced test split holds only 4 malignant rows (one row = 0.25 recall), so the bar is measured on
    # the 42 malignant rows of the full test split, none of which training or tuning saw.
    full_test = make_demo("cancer", tmp_path / "full", seed=0).test
    assert clf.evaluate(full_test)["recall"] >= 0.8


@pytest.mark.slow
def test_one_and_two_logit_binary_heads_reach_the_same_quality(tmp_path: Path) -> None:
    demo = make_demo("cancer", tmp_path, seed=0)
    scores = {}
    for head in ("one", "two"):
        clf = labelwise.fit(
            demo.train, target=demo.target, binary_head=head, config=TrainConfig(seed=0), progress=False
        )
        assert clf.task.head_width == (1 if head == "one" else 2)
        scores[head] = clf.evaluate(demo.test)
    # Same model family, same data and seed: decision quality within a couple of test items (114 rows).
    assert abs(scores["one"]["roc_auc"] - scores["two"]["roc_auc"]) <= 0.01
    assert abs(scores["one"]["accuracy"] - scores["two"]["accuracy"]) <= 0.03


def test_fit_refuses_non_frames() -> None:
    with pytest.raises(labelwise.DataError, match="expected a path"):
        labelwise.fit(torch.zeros(3, 2), target="y")


def test_a_users_own_backbone_trains_saves_and_loads(tmp_path: Path) -> None:
    """An nn.Module of the user's, registered by name so that a saved run can rebuild it without pickling."""
    from torch import nn

    from labelwise.models.registry import _REGISTRY

    class Tiny(nn.Module):
        def __init__(self, in_features: int) -> None:
            super().__init__()
            self.layer, self.num_features = nn.Linear(in_features, 8), 8

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.layer(x))

    @labelwise.register_backbone("test_tiny")
    def tiny(*, in_features: int, in_chans: int | None, pretrained: bool) -> Tiny:
        return Tiny(in_features)

    try:
        clf = labelwise.fit(
            _frame(TaskKind.MULTICLASS),
            target="label",
            model="test_tiny",
            config=FAST,
            progress=False,
            out=tmp_path / "run",
        )
        assert isinstance(clf.network.backbone, Tiny)
        new = _frame(TaskKind.MULTICLASS, n=10, seed=3)
        np.testing.assert_array_equal(labelwise.load(tmp_path / "run").predict_proba(new), clf.predict_proba(new))
    finally:
        _REGISTRY.pop("test_tiny")
