"""Classifier methods not covered by the end-to-end tests of fitting and the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from torch import nn

import labelwise
from labelwise.train import TrainConfig


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    return data.assign(label=np.where(data["a"] > 0, "yes", "no"))


def test_check_finds_a_sigmoid_added_to_a_run(frame: pd.DataFrame, tmp_path: Path) -> None:
    clf = labelwise.fit(frame, target="label", config=TrainConfig(epochs=2), progress=False)
    assert clf.check(frame).ok
    clf = dataclasses.replace(clf, network=nn.Sequential(clf.network, nn.Sigmoid()))
    report = clf.check(frame)
    assert [f.rule for f in report.errors] == ["double_activation"]
    assert "nn.Sigmoid" in report.errors[0].fix
