"""Tests of labelwise.data.splits: stratified splits against scikit-learn and iterstrat, and the fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.model_selection import StratifiedShuffleSplit

from _factories import make_batch, make_task
from labelwise.data.splits import split_train_valid
from labelwise.errors import ConfigError, DataError, DataWarning
from labelwise.task import Task, TaskKind


def _reference(targets: torch.Tensor, task: Task, *, num_valid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels = targets.numpy().astype(np.int64)
    cls = MultilabelStratifiedShuffleSplit if task.kind is TaskKind.MULTILABEL else StratifiedShuffleSplit
    train, valid = next(
        cls(n_splits=1, test_size=num_valid, random_state=seed).split(np.zeros((len(labels), 1)), labels)
    )
    return np.sort(train), np.sort(valid)


@pytest.mark.parametrize("seed", [0, 7])
def test_split_matches_the_reference_splitter(kind: TaskKind, seed: int) -> None:
    task, _, targets = make_batch(kind, seed=seed, n=100)
    train, valid = split_train_valid(targets, task, valid_fraction=0.2, seed=seed)
    ref_train, ref_valid = _reference(targets, task, num_valid=20, seed=seed)
    np.testing.assert_array_equal(train, ref_train)
    np.testing.assert_array_equal(valid, ref_valid)
    assert train.dtype == valid.dtype == np.int64


def test_split_is_a_deterministic_partition(kind: TaskKind) -> None:
    task, _, targets = make_batch(kind, seed=3, n=50)
    train, valid = split_train_valid(targets, task, valid_fraction=0.3, seed=1)
    assert len(valid) == 15 and len(train) == 35
    assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(50))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)
    again = split_train_valid(targets, task, valid_fraction=0.3, seed=1)
    assert np.array_equal(again[1], valid)
    assert not np.array_equal(split_train_valid(targets, task, valid_fraction=0.3, seed=2)[1], valid)


def test_multiclass_split_keeps_class_shares() -> None:
    task = make_task("multiclass")
    targets = torch.tensor([0] * 40 + [1] * 30 + [2] * 20 + [3] * 10)
    _, valid = split_train_valid(targets, task, valid_fraction=0.2)
    assert np.bincount(targets[valid].numpy(), minlength=4).tolist() == [8, 6, 4, 2]


@pytest.mark.parametrize(
    ("targets", "match"),
    [
        pytest.param(torch.tensor([0] * 10 + [2] * 9 + [1]), r"class\(es\) 'cat' have a single item", id="single-item"),
        pytest.param(
            torch.tensor([0, 1, 2, 3] * 3), r"validation split holds 2 rows, fewer than the 4 classes", id="small"
        ),
    ],
)
def test_unstratifiable_split_warns_and_falls_back(targets: torch.Tensor, match: str) -> None:
    task = make_task("multiclass")  # classes bird, cat, dog, fish
    with pytest.warns(DataWarning, match=match + r".*plain random split \(seed=0\).*`is_valid` column"):
        train, valid = split_train_valid(targets, task, valid_fraction=0.2)
    order = np.random.default_rng(0).permutation(len(targets))
    np.testing.assert_array_equal(valid, np.sort(order[: len(valid)]))
    assert len(train) + len(valid) == len(targets)


def test_training_split_smaller_than_the_classes_warns() -> None:
    task = make_task("multiclass")
    with pytest.warns(DataWarning, match=r"training split holds 2 rows, fewer than the 4 classes"):
        split_train_valid(torch.tensor([0, 1, 2, 3] * 2), task, valid_fraction=0.75)


def test_too_few_rows() -> None:
    task = make_task("binary")
    with pytest.raises(DataError, match=r"only 3 row\(s\): too few.*need at least 4.*`is_valid` column"):
        split_train_valid(torch.tensor([0.0, 1.0, 1.0]), task)


@pytest.mark.parametrize(
    ("kind", "targets", "kwargs", "match"),
    [
        pytest.param(
            "binary", torch.zeros(10), {"valid_fraction": 1.0}, r"valid_fraction=1.0; expected", id="fraction"
        ),
        pytest.param("multilabel", torch.zeros(10), {}, r"shape \(10,\) do not fit.*expected \(N, C\)", id="shape"),
        pytest.param("multiclass", torch.full((10,), 7), {}, r"outside 0..3 \(7\).*task.encode", id="range"),
    ],
)
def test_bad_arguments(kind: str, targets: torch.Tensor, kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        split_train_valid(targets, make_task(kind), **kwargs)  # type: ignore[arg-type]
