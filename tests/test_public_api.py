"""The public surface: `labelwise.__all__` is the contract written out below, and every name in it resolves.

The expected names are spelled out here rather than read from `labelwise._EXPORTS`: `__all__` and ``dir()`` are
both built from that table, so comparing them with each other could not catch a name added, dropped or renamed.
"""

from __future__ import annotations

import importlib
import re
import types

import pytest

import labelwise

# The contract. A change to the public surface changes this list in the same commit, on purpose.
PUBLIC = (
    "ArtifactError",
    "CheckReport",
    "Classifier",
    "ConfigError",
    "DataError",
    "DataWarning",
    "Finding",
    "LabelError",
    "LabelwiseClassifier",
    "LabelwiseError",
    "LabelwiseWarning",
    "NotFittedError",
    "PossibleMistakeWarning",
    "Task",
    "TaskKind",
    "TrainConfig",
    "TrainingError",
    "TrainingWarning",
    "WiringCheck",
    "__version__",
    "check",
    "create_backbone",
    "fit",
    "infer_task",
    "list_backbones",
    "load",
    "loss_for",
    "register_backbone",
)

# What `labelwise/__init__.py` binds to run its lazy exports, and is not API: the `from __future__` feature,
# `typing.TYPE_CHECKING` and the helper that builds `__getattr__`/`__dir__`.
MACHINERY = {"annotations", "TYPE_CHECKING", "lazy_exports"}


def test_all_is_the_contract_and_sorted() -> None:
    assert labelwise.__all__ == sorted(PUBLIC)


def test_dir_lists_every_public_name() -> None:
    assert set(PUBLIC) <= set(dir(labelwise))


def test_nothing_public_is_left_out_of_all() -> None:
    # A fresh interpreter would hold nothing else; submodules appear as attributes once anything imports them.
    listed = {name for name in dir(labelwise) if not name.startswith("_")}
    bound = {
        name
        for name, value in vars(labelwise).items()
        if not name.startswith("_") and not _is_labelwise_submodule(value) and name not in MACHINERY
    }
    assert listed - set(PUBLIC) == set()
    assert bound - set(PUBLIC) == set()


@pytest.mark.parametrize("name", sorted((set(PUBLIC) | set(labelwise.__all__)) - {"__version__"}))
def test_every_public_name_imports_from_labelwise(name: str) -> None:
    value = getattr(importlib.import_module("labelwise"), name)  # what `from labelwise import name` runs
    assert value is not None
    module = getattr(value, "__module__", None)
    assert module is not None and (module == "labelwise" or module.startswith("labelwise.")), (name, module)


def test_version_is_a_release_string() -> None:
    from labelwise import __version__

    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-]?\w+)*", __version__), __version__


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        labelwise.fitt  # noqa: B018 - the attribute access is the test


def _is_labelwise_submodule(value: object) -> bool:
    return isinstance(value, types.ModuleType) and value.__name__.startswith("labelwise.")
