"""The finish stage records the validation metrics `evaluate` reports on the same rows: same keys, same values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import labelwise


def _table(num_classes: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, 600)
    features = rng.normal(size=(600, 4)) + labels[:, None] * 0.8
    frame = pd.DataFrame(features, columns=["a", "b", "c", "d"]).assign(label=[f"k{v}" for v in labels])
    return frame.assign(is_valid=np.arange(600) % 5 == 0)


@pytest.mark.parametrize(
    ("num_classes", "options"),
    [
        pytest.param(2, {}, id="binary"),
        pytest.param(4, {"top_k": 2}, id="multiclass-top-k"),
        pytest.param(4, {"allow_none": "energy"}, id="multiclass-abstaining"),
        pytest.param(30, {"loss": "chunked"}, id="ranked"),
    ],
)
def test_the_recorded_validation_metrics_are_what_evaluate_reports(num_classes: int, options: dict) -> None:
    table = _table(num_classes)
    clf = labelwise.fit(table, target="label", epochs=2, progress=False, **options)
    recorded = clf.record.metrics["valid"]
    again = clf.evaluate(table[table["is_valid"]].drop(columns="is_valid"), target="label")
    assert set(recorded) == set(again)
    for key, value in again.items():
        assert recorded[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
