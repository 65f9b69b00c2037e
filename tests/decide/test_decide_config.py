"""labelwise.decide.config: every bad option is refused before training, with the fix in the message."""

from __future__ import annotations

import pytest

from _factories import make_task
from labelwise.decide import DecideConfig
from labelwise.errors import ConfigError
from labelwise.task import Task

BAD = [
    pytest.param({"metric": "f2"}, r"metric|f1", id="unknown-metric"),
    pytest.param(
        {"top_k": 0},
        r"^--top-k 0 is not a number of classes to rank; expected a whole number from 1 to the number of classes\. "
        r"Pass --top-k \(top_k=\) in that range\.$",
        id="top-k-zero",
    ),
    pytest.param({"top_k": True}, r"^--top-k True is not a number of classes to rank", id="top-k-bool"),
    pytest.param({"top_k": 2.0}, r"^--top-k 2\.0 is not a number of classes to rank", id="top-k-float"),
    pytest.param({"allow_none": "entropy"}, r"not a strategy; expected one of max_prob, energy", id="strategy"),
    pytest.param({"allow_none": "enrgy"}, r"Did you mean 'energy'", id="strategy-typo"),
    pytest.param(
        {"allow_none": "max_prob", "coverage": 1.0}, r"--coverage 1.0; expected a fraction in \(0, 1\)", id="c1"
    ),
    pytest.param({"allow_none": "max_prob", "coverage": 0}, r"--coverage 0; expected", id="coverage-0"),
    pytest.param({"allow_none": "max_prob", "coverage": float("nan")}, r"--coverage nan", id="coverage-nan"),
    pytest.param(
        {"coverage": 0.9},
        r"abstaining is off; add --allow-none \(single-label data only",
        id="coverage-without-allow-none",
    ),
    pytest.param(
        {"allow_none": "energy", "coverage": 0.9, "selective_accuracy": 0.99}, r"pass one of them", id="two-targets"
    ),
    pytest.param({"allow_none": "energy", "selective_accuracy": 1.5}, r"fraction in \(0, 1\]", id="sel-acc"),
    pytest.param({"conformal": 1.0}, r"--conformal 1.0; expected a fraction in \(0, 1\)", id="conformal-1"),
    pytest.param({"conformal": 0.9, "top_k": 2}, r"pass one of them", id="conformal-and-top-k"),
]


@pytest.mark.parametrize(("options", "match"), BAD)
def test_bad_options_are_refused(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DecideConfig(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("task", "options", "match"),
    [
        pytest.param(make_task("multilabel"), {"allow_none": "max_prob"}, "already answers none.*Drop", id="ml"),
        pytest.param(
            make_task("binary"),
            {"top_k": 1},
            "for multiclass tasks; this one is binary.*--conformal",
            id="top-k-binary",
        ),
        pytest.param(
            make_task("multiclass"),
            {"top_k": 5},
            r"^--top-k 5 is not a number of classes to rank; expected a whole number from 1 to 4, the number of "
            r"classes\. Pass --top-k \(top_k=\) in that range\.$",
            id="top-k-above-the-classes",
        ),
        pytest.param(make_task("binary"), {"allow_none": "energy"}, "--binary-head two", id="energy-one-logit"),
    ],
)
def test_options_the_task_cannot_honour_are_refused(task: Task, options: dict[str, object], match: str) -> None:
    config = DecideConfig(**options)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=match):
        config.check_for(task)


@pytest.mark.parametrize("k", [1, 4], ids=["one", "every-class"])
def test_top_k_from_one_to_every_class_is_valid(k: int) -> None:
    DecideConfig(top_k=k).check_for(make_task("multiclass"))  # 4 classes: a set of all 4 is a valid (if dull) set


def test_defaults_and_round_trip() -> None:
    assert DecideConfig(allow_none="energy").reject_target == ("coverage", 0.95)
    assert DecideConfig(allow_none="energy", selective_accuracy=0.99).reject_target == ("selective_accuracy", 0.99)
    assert DecideConfig(allow_none="one_vs_rest").none_score == "max_prob"
    assert DecideConfig().none_score is None
    config = DecideConfig(metric=" FBETA:2.0 ", allow_none="energy", coverage=0.9, conformal=None)
    assert config.metric == "fbeta:2"
    assert DecideConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"unknown DecideConfig fields 'top' \(did you mean 'top_k'\?\)"):
        DecideConfig.from_dict({"top": 3})
