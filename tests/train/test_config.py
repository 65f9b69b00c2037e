"""TrainConfig: validation, the auto rules, and its JSON form."""

from __future__ import annotations

import json
import math

import pytest

from labelwise.errors import ConfigError
from labelwise.train import TrainConfig
from labelwise.train.config import AUTO_LR


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"epochs": 0}, r"epochs=0; expected an int >= 1 or None \(auto\)", id="epochs"),
        pytest.param({"epochs": 2.5}, r"epochs=2.5; expected an int", id="epochs-float"),
        pytest.param({"time_budget": 0}, r"time_budget=0; expected a number > 0 or None", id="budget"),
        pytest.param({"lr": -1e-3}, r"lr=-0.001; expected a number > 0", id="lr"),
        pytest.param({"lr": math.nan}, r"lr=nan; expected a number > 0", id="lr-nan"),
        pytest.param({"weight_decay": -0.1}, r"weight_decay=-0.1; expected a number >= 0 or None", id="wd"),
        pytest.param({"batch_size": 0}, r"batch_size=0; expected an int >= 1", id="batch"),
        pytest.param({"patience": 0}, r"patience=0; expected an int >= 1\.", id="patience"),
        pytest.param({"seed": -1}, r"seed=-1; expected an int >= 0", id="seed"),
        pytest.param({"seed": True}, r"seed=True; expected an int", id="seed-bool"),
        pytest.param({"label_smoothing": 1.0}, r"label_smoothing=1.0; expected a value in \[0, 1\)", id="smoothing"),
        pytest.param({"balance": "yes"}, r"balance='yes'; expected 'auto' or 'none'", id="balance"),
        pytest.param({"num_workers": -1}, r"num_workers=-1; expected an int >= 0", id="workers"),
        pytest.param({"accelerator": ""}, r"accelerator=''; expected 'auto', 'cpu', 'gpu' or 'mps'", id="accelerator"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("num_samples", "expected"),
    [(1, 1), (10, 10), (20, 20), (398, 32), (700, 32), (1257, 64), (3000, 128), (5000, 256), (10**6, 256)],
)
def test_auto_batch_size(num_samples: int, expected: int) -> None:
    assert TrainConfig().resolve_batch_size(num_samples) == expected


def test_explicit_batch_size_is_capped_by_the_data() -> None:
    assert TrainConfig(batch_size=128).resolve_batch_size(1000) == 128
    assert TrainConfig(batch_size=128).resolve_batch_size(50) == 50


@pytest.mark.parametrize(("steps", "expected"), [(1, 100), (20, 50), (25, 40), (79, 13), (5000, 10)])
def test_auto_epochs_aim_at_1000_steps_within_10_and_100(steps: int, expected: int) -> None:
    assert TrainConfig().resolve_epochs(steps) == expected
    assert TrainConfig(epochs=3).resolve_epochs(steps) == 3


def test_auto_lr() -> None:
    assert TrainConfig().resolve_lr() == AUTO_LR
    assert TrainConfig(lr=0.1).resolve_lr() == 0.1


def test_round_trip_through_json() -> None:
    config = TrainConfig(epochs=7, time_budget=30.5, lr=1e-3, batch_size=32, balance="none", seed=3)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            "learning_rate", r"unknown TrainConfig option 'learning_rate' \(did you mean 'lr'\?\)", id="alias"
        ),
        pytest.param("epoch", r"unknown TrainConfig option 'epoch' \(did you mean 'epochs'\?\)", id="typo"),
        pytest.param("zzz", r"unknown TrainConfig option 'zzz'\. Options: epochs, time_budget", id="no-hint"),
    ],
)
def test_from_dict_refuses_unknown_keys(key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({key: 1})
