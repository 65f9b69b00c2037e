"""The ranked path of a large softmax head against the full (N, C) path on the same weights and data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import labelwise
from labelwise.calibrate import Calibration, fit_temperature
from labelwise.cli import main
from labelwise.datasets._extreme import extreme_frames
from labelwise.decide.config import DecideConfig
from labelwise.decide.ood import unknown_scores
from labelwise.decide.policy import fit_policy
from labelwise.errors import ConfigError
from labelwise.heads.ranked import RankedHead, fit_ranked_calibration, fit_ranked_policy, ranked_decisions
from labelwise.ranking import rank
from labelwise.task import Task
from labelwise.train import TrainConfig

NUM_CLASSES = 400


@pytest.fixture(scope="module")
def head_and_data() -> tuple[nn.Linear, torch.Tensor, torch.Tensor, Task]:
    """A head whose logits are informative but noisy, so the fitted temperature is not 1."""
    torch.manual_seed(0)
    head = nn.Linear(16, NUM_CLASSES)
    features = torch.randn(900, 16)
    logits = head(features).detach()
    targets = torch.where(torch.rand(900) < 0.6, logits.argmax(dim=1), torch.randint(0, NUM_CLASSES, (900,)))
    return head, features, targets, Task(kind="multiclass", classes=tuple(range(NUM_CLASSES)))


def test_ranked_temperature_equals_the_full_fit(
    head_and_data: tuple[nn.Linear, torch.Tensor, torch.Tensor, Task],
) -> None:
    head, features, targets, task = head_and_data
    full = fit_temperature(head(features).detach(), targets, task)
    ranked = fit_ranked_calibration(features, head, targets)
    assert ranked.temperatures[0] == pytest.approx(full.temperatures[0], rel=2e-3)
    assert ranked.temperatures[0] != pytest.approx(1.0, abs=0.05)  # a fit that did nothing would also "agree" at 1
    assert ranked.nll_after == pytest.approx(full.nll_after, rel=1e-4)
    assert ranked.nll_before == pytest.approx(full.nll_before, rel=1e-6)


def test_separable_data_keeps_temperature_one() -> None:
    head = nn.Linear(4, 300)
    features = torch.randn(64, 4) * 50
    targets = head(features).detach().argmax(dim=1)
    calibration = fit_ranked_calibration(features, head, targets)
    assert calibration.temperatures == (1.0,) and calibration.num_separable == 1


@pytest.mark.parametrize("score", ["max_prob", "energy"])
def test_ranked_decisions_equal_the_full_policy(
    head_and_data: tuple[nn.Linear, torch.Tensor, torch.Tensor, Task], score: str
) -> None:
    head, features, targets, task = head_and_data
    calibration = Calibration(temperatures=(0.7,))
    decide = DecideConfig(allow_none=score, coverage=0.8)
    calibrated = calibration.apply(head(features).detach())
    full_policy = fit_policy(calibrated, targets, task, decide)
    policy = fit_ranked_policy(features, head, calibration, targets, task, decide)
    assert policy.abstention is not None and full_policy.abstention is not None
    assert policy.abstention.threshold == pytest.approx(full_policy.abstention.threshold, rel=1e-5)
    out, ranked, lse = ranked_decisions(features, head, calibration, policy, k=5)
    full_out = full_policy.decide(calibrated, task)
    assert torch.equal(out.decisions, full_out.decisions) and torch.equal(out.abstained, full_out.abstained)
    assert out.probs is None and out.sets is None
    assert out.unknown_score is not None
    torch.testing.assert_close(out.unknown_score, unknown_scores(calibrated, task, score=score), rtol=1e-5, atol=1e-6)
    expected = rank(torch.softmax(calibrated, dim=1), 5)
    assert torch.equal(ranked.classes, expected.classes)
    torch.testing.assert_close(ranked.probs, expected.probs, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(lse, torch.logsumexp(calibrated, dim=1), rtol=1e-5, atol=1e-5)


def test_ranked_policy_refuses_what_needs_every_probability(
    head_and_data: tuple[nn.Linear, torch.Tensor, torch.Tensor, Task],
) -> None:
    head, features, targets, task = head_and_data
    with pytest.raises(ConfigError, match="--conformal needs every class's probability"):
        fit_ranked_policy(features, head, Calibration(), targets, task, DecideConfig(conformal=0.9))
    with pytest.raises(ConfigError, match="predict --top-k K"):
        fit_ranked_policy(features, head, Calibration(), targets, task, DecideConfig(top_k=3))


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return extreme_frames(0, num_classes=NUM_CLASSES, zipf_train=3000, num_valid=600, num_test=600)


@pytest.fixture(scope="module")
def runs(tables: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, labelwise.Classifier]:
    trainval, _ = tables
    return {
        loss: labelwise.fit(
            trainval,
            target="label",
            config=TrainConfig(epochs=3, loss=loss, balance="none", num_sampled=100),
            progress=False,
        )
        for loss in ("full", "chunked", "sampled")
    }


def test_chunked_training_matches_full_and_sampled_comes_close(
    runs: dict[str, labelwise.Classifier], tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = tables
    metrics = {loss: clf.evaluate(test, target="label") for loss, clf in runs.items()}
    assert all(isinstance(runs[loss].head, RankedHead) for loss in ("chunked", "sampled"))
    assert not isinstance(runs["full"].head, RankedHead)
    # Same seed, same initial weights, an exact loss: the same model up to float rounding.
    assert metrics["chunked"]["accuracy"] == pytest.approx(metrics["full"]["accuracy"], abs=0.01)
    assert metrics["chunked"]["log_loss"] == pytest.approx(metrics["full"]["log_loss"], rel=0.02)
    assert metrics["full"]["accuracy"] > 0.8
    assert metrics["sampled"]["precision@1"] > metrics["full"]["accuracy"] - 0.1
    for loss in ("chunked", "sampled"):
        assert {"precision@5", "recall@5", "macro_recall@1/head", "macro_recall@1/tail"} <= set(metrics[loss])
        assert runs[loss].info["head"]["loss"] == loss


def test_a_ranked_run_saves_loads_and_predicts_top_k(
    runs: dict[str, labelwise.Classifier], tables: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _, test = tables
    run = runs["sampled"].save(tmp_path / "run")
    test.head(50).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), str(tmp_path / "new.csv"), "--out", str(out), "--top-k", "3"]) == 0
    frame = pd.read_csv(out)
    assert [c for c in frame.columns if c.startswith(("top", "p_top"))] == [
        "top1", "top2", "top3", "p_top1", "p_top2", "p_top3"
    ]  # fmt: skip
    assert (frame["prediction"] == frame["top1"]).all()
    assert np.all(np.diff(frame[["p_top1", "p_top2", "p_top3"]].to_numpy(), axis=1) <= 0)
    loaded = labelwise.load(run)
    assert loaded.predict(test.head(50).drop(columns="label")) == frame["prediction"].tolist()


@pytest.mark.parametrize(
    ("options", "binary", "message"),
    [
        (["--loss", "sampled"], True, "binary"),
        (["--loss", "chunked"], True, "binary"),
        (["--loss", "sampled", "--num-sampled", "5000"], False, "only 400 classes"),
        (["--loss", "chunked", "--conformal", "0.9"], False, "--conformal needs every class's probability"),
        (["--loss", "sampled", "--num-sampled", "0"], False, "num_sampled=0"),
    ],
)
def test_bad_head_loss_options_exit_2_and_write_nothing(
    tables: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    binary: bool,
    message: str,
) -> None:
    trainval, _ = tables
    if binary:
        trainval = trainval.assign(label=np.where(trainval.index % 2 == 0, "a", "b"))
    data = tmp_path / "train.parquet"
    trainval.to_parquet(data)
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet", *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labelwise: error: ") and message in err[0], err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train.parquet"]
