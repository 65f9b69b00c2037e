"""labelwise.calibrate: temperature scaling against scikit-learn's, and its invariants."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labelwise.calibrate as calibrate_module
from _factories import make_batch, make_task
from _references import reference_calibrated_probs, reference_loss
from labelwise.calibrate import Calibration, fit_temperature
from labelwise.errors import ConfigError, DataError, LabelError, TrainingError
from labelwise.metrics import expected_calibration_error
from labelwise.task import Task, TaskKind

SCALES = [pytest.param(0.4, id="underconfident"), pytest.param(3.0, id="overconfident")]


def _calibrated_batch(
    task: Task, *, seed: int = 0, n: int = 400, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose probabilities are calibrated (targets drawn from them), then multiplied by ``scale``."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, task.head_width, generator=gen) * 1.5
    probs = task.probabilities(logits)
    if task.kind is TaskKind.MULTILABEL:
        targets = torch.bernoulli(probs, generator=gen)
    else:
        targets = torch.multinomial(probs, 1, generator=gen)[:, 0].to(task.target_dtype)
    return logits * scale, targets


def _assert_matches_sklearn(task: Task, logits: torch.Tensor, targets: torch.Tensor) -> None:
    calibration = fit_temperature(logits, targets, task)
    ours = task.probabilities(calibration.apply(logits)).double().numpy()
    # Two optimisers (LBFGS on log T vs sklearn's bounded Brent on log 1/T) reach the same optimum; our
    # probabilities are float32.
    np.testing.assert_allclose(ours, reference_calibrated_probs(task.kind, logits, targets), atol=2e-6)
    assert len(calibration.temperatures) == (task.head_width if task.activation == "sigmoid" else 1)


@pytest.mark.parametrize("scale", SCALES)
def test_temperature_matches_sklearn(kind: TaskKind, scale: float) -> None:
    task = make_task(kind)
    _assert_matches_sklearn(task, *_calibrated_batch(task, scale=scale))


@pytest.mark.parametrize("scale", SCALES)
def test_two_logit_binary_temperature_matches_sklearn(scale: float) -> None:
    task = Task(kind=TaskKind.BINARY, classes=("benign", "malignant"), head="two_logits")
    _assert_matches_sklearn(task, *_calibrated_batch(task, scale=scale))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), scale=st.floats(0.05, 20.0), n=st.integers(8, 200))
def test_temperature_keeps_decisions_and_ranking_and_never_raises_nll(
    kind: TaskKind, seed: int, scale: float, n: int
) -> None:
    task, logits, targets = make_batch(kind, seed=seed, n=n)
    logits = logits * scale
    calibration = fit_temperature(logits, targets, task)
    scaled = calibration.apply(logits)
    if task.activation == "softmax":
        assert torch.equal(scaled.argmax(dim=1), logits.argmax(dim=1))
    else:
        assert torch.equal(torch.sign(scaled), torch.sign(logits))
        y, before, after = targets.reshape(n, -1).numpy(), logits.double().numpy(), scaled.double().numpy()
        for j in range(y.shape[1]):
            if 0 < y[:, j].sum() < n:
                assert skm.roc_auc_score(y[:, j], after[:, j]) == pytest.approx(
                    skm.roc_auc_score(y[:, j], before[:, j])
                )
    # The fit compares in float64; the float32 reference may see a difference of rounding size.
    assert reference_loss(kind, scaled, targets) <= reference_loss(kind, logits, targets) + 1e-6


def test_overconfident_model_gets_temperature_above_one_and_lower_ece(kind: TaskKind) -> None:
    task = make_task(kind)
    logits, targets = _calibrated_batch(task, n=3000, scale=5.0)
    calibration = fit_temperature(logits, targets, task)
    assert min(calibration.temperatures) > 2.0  # the true temperature is 5, the fit sees 3000 items
    before = expected_calibration_error(task.probabilities(logits), targets, task)
    after = expected_calibration_error(task.probabilities(calibration.apply(logits)), targets, task)
    assert after < before / 2
    assert calibration.nll_after is not None and calibration.nll_before is not None
    assert calibration.nll_after < calibration.nll_before


def test_label_with_one_class_keeps_temperature_one() -> None:
    task = make_task("multilabel")
    logits, targets = _calibrated_batch(task, scale=4.0)
    targets[:, 1] = 0.0
    calibration = fit_temperature(logits, targets, task)
    assert calibration.temperatures[1] == 1.0
    assert all(t > 1.5 for i, t in enumerate(calibration.temperatures) if i != 1)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_separable_data_keeps_temperature_one(kind: str) -> None:
    """All validation items right with a margin: the NLL keeps falling as T -> 0, so no T is fitted."""
    task = make_task(kind)
    targets = torch.arange(12) % task.num_classes
    if kind == "binary":
        logits = torch.linspace(-2, 3, 12)[:, None]
        targets = (logits[:, 0] > 0).float()
    else:
        logits = torch.nn.functional.one_hot(targets, task.num_classes) * 3.0 + torch.rand(12, task.num_classes)
    calibration = fit_temperature(logits, targets, task)
    assert calibration.is_identity and calibration.num_separable == 1
    assert (
        calibration.describe() == "no temperature scaling (T kept at 1: the validation items are perfectly "
        "separated, so no finite T fits)"
    )
    flipped = targets.clone()
    flipped[0] = 1 - flipped[0] if kind == "binary" else (flipped[0] + 1) % task.num_classes
    assert fit_temperature(logits, flipped, task).num_separable == 0  # one mistake: T is fitted


def test_separable_labels_of_a_multilabel_task_keep_temperature_one() -> None:
    task = make_task("multilabel")
    _, logits, targets = make_batch("multilabel", n=200)
    logits[:, 2] = torch.where(targets[:, 2] > 0, 4.0, -4.0)  # label 2 is separated perfectly
    calibration = fit_temperature(logits * 3, targets, task)
    assert calibration.num_separable == 1 and calibration.temperatures[2] == 1.0
    assert "T kept at 1 for 1 of 4 logits" in calibration.describe()


def test_no_improvement_gives_the_identity() -> None:
    task, logits, targets = make_batch("multiclass")
    calibration = fit_temperature(torch.zeros_like(logits), targets, task)
    assert calibration.is_identity
    assert calibration.describe().startswith("no temperature scaling (it did not lower validation NLL")


def test_a_temperature_that_raises_nll_is_not_kept(kind: TaskKind, monkeypatch: pytest.MonkeyPatch) -> None:
    task = make_task(kind)
    logits, targets = _calibrated_batch(task)  # calibrated: T = 50 is far worse than T = 1
    monkeypatch.setattr(calibrate_module, "_minimise", lambda objective, *, num: torch.full((num,), math.log(50.0)))
    calibration = fit_temperature(logits, targets, task)
    assert calibration.is_identity and calibration.nll_after == calibration.nll_before


def test_describe_and_json_round_trip(kind: TaskKind) -> None:
    task = make_task(kind)
    logits, targets = _calibrated_batch(task, scale=3.0)
    calibration = fit_temperature(logits, targets, task)
    assert Calibration.from_dict(json.loads(json.dumps(calibration.to_dict()))) == calibration
    text = calibration.describe()
    assert f"on {len(logits)} items" in text
    assert text.startswith(
        "per-logit temperature scaling, T" if kind is TaskKind.MULTILABEL else "temperature scaling, T"
    )
    assert Calibration().describe() == "no temperature scaling"


# -- errors ------------------------------------------------------------------------------------------
def test_bad_temperatures_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"finite and > 0, got 0.0. Fit them with `fit_temperature"):
        Calibration(temperatures=(0.0,))
    with pytest.raises(ConfigError, match=r"temperatures='ab'; expected a sequence of positive numbers"):
        Calibration(temperatures="ab")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"num_samples=-1; expected an integer >= 0"):
        Calibration(num_samples=-1)
    with pytest.raises(ConfigError, match=r"unknown calibration fields 'temperature'; expected temperatures.*upgrade"):
        Calibration.from_dict({"temperature": [1.0]})


def test_apply_rejects_logits_of_another_width() -> None:
    with pytest.raises(ConfigError, match=r"shape \(3, 2\) do not fit 4 per-logit temperatures: expected \(N, 4\)"):
        Calibration(temperatures=(1.0, 2.0, 1.0, 1.0)).apply(torch.zeros(3, 2))


def test_fit_rejects_bad_logits(kind: TaskKind) -> None:
    task, logits, targets = make_batch(kind)
    with pytest.raises(ConfigError, match=r"logits must be a float tensor, got torch.int64. Pass the network's raw"):
        fit_temperature(logits.long(), targets, task)
    with pytest.raises(DataError, match=r"no validation items .*expected at least one.*Calibration\(\)"):
        fit_temperature(logits[:0], targets[:0], task)
    with pytest.raises(ConfigError, match=rf"needs \(N, {task.head_width}\). Size the head"):
        fit_temperature(torch.zeros(len(logits), 7), targets, task)
    broken = logits.clone()
    broken[3, 0] = float("nan")
    with pytest.raises(TrainingError, match=r"non-finite logits .* row 3 .*expected finite.*lower the learning rate"):
        fit_temperature(broken, targets, task)


def test_fit_rejects_targets_of_the_wrong_dtype() -> None:
    task, logits, targets = make_batch("binary")
    with pytest.raises(LabelError, match=r"needs torch.float32 targets, got torch.int64.*task.encode"):
        fit_temperature(logits, targets.long(), task)


def test_one_vs_rest_gets_a_temperature_per_class_like_its_one_hot_multilabel_twin() -> None:
    task = Task(kind=TaskKind.MULTICLASS, classes=("a", "b", "c"), head="one_vs_rest")
    twin = Task(kind=TaskKind.MULTILABEL, classes=task.classes)  # the same BCE on one-hot targets
    gen = torch.Generator().manual_seed(3)
    targets = torch.randint(0, 3, (300,), generator=gen)
    logits = (torch.nn.functional.one_hot(targets, 3) * 4 - 2 + torch.randn(300, 3, generator=gen)) * 8.0
    ours = fit_temperature(logits, targets, task)
    assert len(ours.temperatures) == 3 and min(ours.temperatures) > 1  # log-odds are 4z - 0.69, these 8z: soften each
    torch.testing.assert_close(
        torch.tensor(ours.temperatures),
        torch.tensor(fit_temperature(logits, task.bce_targets(targets), twin).temperatures),
    )
