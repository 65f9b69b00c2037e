"""Cross-fitting (``--folds``): every row predicted out of fold, the decisions fitted on those predictions, the mean
of the members predicting, and the refusals of folds that cannot run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score

import labelwise
from _factories import make_table
from labelwise.cli import main
from labelwise.data.splits import assign_folds
from labelwise.errors import DataError
from labelwise.models.ensemble import Ensemble
from labelwise.task import Task, TaskKind


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_every_row_is_predicted_once_by_the_member_that_did_not_train_on_it(kind: str, tmp_path: Path) -> None:
    frame = make_table(120, seed=1)[["x0", "x1", "color", kind]]
    clf = labelwise.fit(frame, target=kind, folds=3, epochs=4, out=tmp_path / "run", progress=False)
    oof = clf.out_of_fold
    assert oof is not None and isinstance(clf.network, Ensemble) and len(clf.network.members) == 3
    assert sorted(oof["row"]) == list(range(120)) and set(oof["fold"]) == {0, 1, 2}
    assert clf.info["training"]["num_valid"] == 120
    # Member j alone, on the rows of fold j, gives the out-of-fold probabilities (after the run's calibration).
    for fold in range(3):
        part = oof[oof["fold"] == fold]
        encoded = clf.inputs.encode(labelwise.data.sources.source_from_frame(frame.iloc[part["row"].to_numpy()]))
        with torch.no_grad():
            logits = clf.network.members[fold](clf.inputs.batch_transform(encoded.values))
        probs = clf.task.probabilities(clf.calibration.apply(logits))
        expected = part[[f"p:{c}" for c in clf.task.classes]].to_numpy()
        np.testing.assert_allclose(probs.numpy(), expected, atol=1e-5)
    loaded = labelwise.load(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded.out_of_fold, oof, check_dtype=False, atol=1e-6)
    np.testing.assert_allclose(loaded.predict_proba(frame), clf.predict_proba(frame), atol=1e-6)


def test_the_ensemble_predicts_with_the_mean_of_its_members_logits(tmp_path: Path) -> None:
    frame = make_table(90, seed=2)[["x0", "x1", "color", "multiclass"]]
    clf = labelwise.fit(frame, target="multiclass", folds=3, epochs=3, progress=False)
    batch = clf.inputs.batch_transform(clf.inputs.encode(labelwise.data.sources.source_from_frame(frame)).values)
    with torch.no_grad():
        mean = torch.stack([member(batch) for member in clf.network.members]).mean(0)
        np.testing.assert_allclose(clf.network(batch).numpy(), mean.numpy(), atol=1e-6)


def test_cross_fitted_cancer_reaches_the_quality_of_one_model(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True).frame
    test = data.sample(frac=0.25, random_state=0)
    clf = labelwise.fit(data.drop(test.index), target="target", folds=5, progress=False)
    probs = clf.predict_proba(test.drop(columns="target"))
    assert roc_auc_score(test["target"], probs[:, list(clf.task.classes).index(1)]) >= 0.985
    assert "5-fold cross-fitting" in clf.info["training"]["split"]


def test_assign_folds_keeps_each_class_share_in_every_fold() -> None:
    task = Task(kind="multiclass", classes=("a", "b", "c"))
    targets = torch.tensor([0] * 30 + [1] * 15 + [2] * 5)
    folds = assign_folds(targets, task, folds=5, seed=3)
    for fold in range(5):
        assert np.bincount(targets[folds == fold].numpy(), minlength=3).tolist() == [6, 3, 1]
    assert (assign_folds(targets, task, folds=5, seed=3) == folds).all()


def test_assign_folds_refuses_a_class_smaller_than_the_folds() -> None:
    task = Task(kind="binary", classes=("no", "yes"))
    with pytest.raises(DataError, match=r"--folds 5 needs at least 5 items of every class, but class 'yes' has 3"):
        assign_folds(torch.tensor([0.0] * 20 + [1.0] * 3), task, folds=5)


def test_a_rare_multilabel_tag_may_miss_a_fold() -> None:
    task = Task(kind=TaskKind.MULTILABEL, classes=("p", "q"))
    targets = torch.tensor([[1.0, 0.0]] * 18 + [[0.0, 1.0]] * 2)
    assert set(assign_folds(targets, task, folds=4).tolist()) == {0, 1, 2, 3}


def _table_csv(path: Path, **extra: object) -> Path:
    frame = make_table(60)[["x0", "x1", "binary"]].assign(**extra)
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--folds", "0"], "folds=0; expected an int >= 1"),
        (["--folds", "two"], "expected a whole number of folds or 'auto'"),
        (["--folds", "40"], "--folds 40 needs at least 40 items of every class"),
    ],
)
def test_bad_folds_exit_2_in_one_line_and_write_nothing(
    args: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _table_csv(tmp_path / "d.csv")
    try:
        code = main(["train", str(data), "--target", "binary", "--out", str(tmp_path / "run"), "--quiet", *args])
    except SystemExit as exit_:  # argparse's usage errors exit from inside main
        code = int(exit_.code or 0)
    assert code == 2
    assert expected in _error_line(capsys)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_folds_with_an_is_valid_column_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _table_csv(tmp_path / "d.csv", is_valid=[i % 5 == 0 for i in range(60)])
    code = main(["train", str(data), "--target", "binary", "--out", str(tmp_path / "run"), "--folds", "3"])
    assert code == 2
    assert "--folds 3 with validation rows of your own" in _error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_folds_with_a_streamed_source_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.parquet"
    make_table(60)[["x0", "x1", "binary"]].to_parquet(data)
    args = ["train", str(data), "--target", "binary", "--out", str(tmp_path / "run"), "--stream", "on", "--folds", "3"]
    assert main(args) == 2
    assert "--folds 3 with a streamed Parquet source" in _error_line(capsys)
    assert not (tmp_path / "run").exists()
