"""Every option of `labelwise.fit` is spelled once: a dataclass field, its `labelwise train` flag, its estimator
parameter, all under the same name and with the same default."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import MISSING, fields

import pytest

import labelwise
from labelwise.cli._parser import build_parser
from labelwise.decide import DecideConfig
from labelwise.errors import ConfigError
from labelwise.options import DataConfig, FitOptions, ModelConfig, option_fields
from labelwise.train import TrainConfig

# Flags spelled otherwise than "--" + the field name with "-" for "_", and why.
FLAG_ALIASES = {"loggers": "--logger"}  # one flag repeated per logger reads as `--logger csv tensorboard`
# Options the estimator does not take, and why (its docstring says the same).
NOT_IN_ESTIMATOR = {
    "target": "y holds the labels",
    "image_col": "X is an array of features",
    "stream": "X is in memory",
    "skip_bad_images": "X holds no images",
    "pretrained": "no image backbone reads an array of features",
    "image_size": "no image backbone reads an array of features",
    "column_kinds": "X is an array of numbers (sklearn's validate_data), so every column is numeric",
    "loggers": "an estimator's fit has no run folder to log into",
    "seed": "spelled random_state, as everywhere in scikit-learn",
}


def _default(name: str) -> object:
    for config in (DataConfig, ModelConfig, TrainConfig, DecideConfig):
        for item in fields(config):
            if item.name == name:
                return item.default if item.default is not MISSING else item.default_factory()  # type: ignore[misc]
    raise KeyError(name)


def _train_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_the_option_names_are_unique_across_the_four_groups() -> None:
    names = [item.name for config in (DataConfig, ModelConfig, TrainConfig, DecideConfig) for item in fields(config)]
    assert len(names) == len(set(names)) == len(option_fields())


@pytest.mark.parametrize("name", sorted(option_fields()))
def test_every_option_has_its_train_flag_with_the_same_default(name: str) -> None:
    flag = FLAG_ALIASES.get(name, "--" + name.replace("_", "-"))
    actions = {option: action for action in _train_parser()._actions for option in action.option_strings}
    assert flag in actions, f"`labelwise train` has no {flag} for the option {name!r}"
    assert actions[flag].dest == name
    default = actions[flag].default
    assert (tuple(default) if isinstance(default, list) else default) == _default(name)


@pytest.mark.parametrize("name", sorted(option_fields()))
def test_every_option_has_its_estimator_parameter_with_the_same_default(name: str) -> None:
    parameters = inspect.signature(labelwise.LabelwiseClassifier).parameters
    if name in NOT_IN_ESTIMATOR:
        assert name not in parameters
        return
    assert name in parameters, f"LabelwiseClassifier has no parameter {name!r}"
    assert parameters[name].default == _default(name)


def test_the_estimator_takes_no_parameter_that_is_not_an_option() -> None:
    parameters = set(inspect.signature(labelwise.LabelwiseClassifier).parameters)
    assert parameters - set(option_fields()) == {"random_state"}


def test_the_train_command_with_no_options_gives_the_default_options() -> None:
    args = _train_parser().parse_args(["data.csv"])
    given = {name: getattr(args, name) for name in option_fields()}
    given["loggers"] = tuple(given["loggers"])
    assert FitOptions.from_keywords(**given) == FitOptions()


def test_keywords_go_to_their_group() -> None:
    options = FitOptions.from_keywords(target=["a", "b"], model="cnn", epochs=3, metric="mcc")
    assert options.data.target == ("a", "b")
    assert options.model.model == "cnn"
    assert options.train.epochs == 3
    assert options.decide.metric == "mcc"


def test_an_unknown_keyword_is_refused_with_the_closest_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'learningrate'"):
        labelwise.fit("never-read.csv", learningrate=0.1)
    with pytest.raises(ConfigError, match=r"'epoch' \(did you mean 'epochs'\?\)"):
        labelwise.fit("never-read.csv", epoch=3)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"task": "regression"}, r"task='regression' is not one of 'auto', 'binary'"),
        ({"binary_head": "three"}, r"binary_head='three'; expected 'one' or 'two'"),
        ({"image_size": 0}, r"image_size=0; expected a side length"),
        ({"epochs": 0}, r"epochs=0; expected an int >= 1"),
    ],
)
def test_bad_values_are_refused_naming_the_option(keywords: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FitOptions.from_keywords(**keywords)


def test_options_round_trip_through_their_dict() -> None:
    options = FitOptions.from_keywords(target=["a", "b"], epochs=3, loggers=("csv", "tensorboard"), allow_none="energy")
    assert FitOptions.from_dict(options.to_dict()) == options


def test_from_dict_refuses_an_unknown_field() -> None:
    data = FitOptions().to_dict()
    data["train"]["learning_rate"] = 0.1
    with pytest.raises(ConfigError, match="unknown TrainConfig fields 'learning_rate'"):
        FitOptions.from_dict(data)
