"""Narrow table features: widened per batch, they are the wide features `TablePreprocessor.features` writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import labelwise
import labelwise.data.tables
from labelwise.data.sources import source_from_frame
from labelwise.data.tables import TablePreprocessor
from labelwise.inputs.columns import FeatureGroup


def _frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "skewed": rng.lognormal(size=rows).astype(np.float32),
            "with_gaps": rng.normal(size=rows).astype(np.float32),
            "color": rng.choice(["red", "green", "blue"], size=rows),
            "count": rng.integers(0, 1000, size=rows),
            "flag": rng.integers(0, 2, size=rows),  # 0/1: no bins
        }
    )
    frame.loc[::7, "with_gaps"] = np.nan
    frame["label"] = np.where(frame["skewed"] + frame["with_gaps"].fillna(0) > 1.5, "yes", "no")
    return frame


def test_widened_narrow_rows_are_the_wide_features_bit_for_bit() -> None:
    frame = _frame()
    table = TablePreprocessor.fit(frame, columns=["skewed", "with_gaps", "color", "count", "flag"])
    wide = table.features(frame, num_rows=len(frame))
    narrow = table.features(frame, num_rows=len(frame), narrow=True)
    widening = table.widening
    assert widening is not None and narrow.shape[1] == widening.narrow < wide.shape[1] == widening.wide
    rows = torch.tensor([5, 0, 299, 7, 7])
    assert torch.equal(widening(torch.from_numpy(narrow)[rows]), torch.from_numpy(wide)[rows])
    assert torch.equal(widening(torch.from_numpy(narrow)), torch.from_numpy(wide))
    already_wide = torch.from_numpy(wide[:4])
    assert widening(already_wide) is already_wide  # a wide batch (serve, streaming) passes unchanged


def test_a_table_without_binned_columns_has_no_widening() -> None:
    frame = pd.DataFrame({"flag": [0, 1] * 50, "color": ["a", "b", "c", "d"] * 25})
    table = TablePreprocessor.fit(frame, columns=["flag", "color"])
    assert table.widening is None and not table.narrow_pays(10**9)
    assert np.array_equal(table.features(frame, num_rows=100, narrow=True), table.features(frame, num_rows=100))


def test_the_group_stores_a_large_table_narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame()
    table = TablePreprocessor.fit(frame, columns=["skewed", "with_gaps", "color", "count"])
    group, source = FeatureGroup(table), source_from_frame(frame, target="label")
    assert group.encode(source, skip_bad=False).tensor.shape[1] == table.num_features  # 300 rows: wide
    assert table.narrow_pays(10**6)  # a million rows of these features would pass 64 MiB
    monkeypatch.setattr(labelwise.data.tables, "NARROW_ABOVE_BYTES", 0)
    stored = group.encode(source, skip_bad=False).tensor
    assert stored.shape[1] < table.num_features
    transform = group.transform(train=True)
    assert transform is not None and transform(stored).shape[1] == table.num_features


@pytest.mark.parametrize("folds", [1, 5])
def test_training_on_narrow_rows_gives_the_model_wide_rows_give(monkeypatch: pytest.MonkeyPatch, folds: int) -> None:
    frame, test = _frame(seed=0), _frame(rows=100, seed=1).drop(columns="label")
    wide = labelwise.fit(frame, target="label", epochs=3, folds=folds, progress=False)
    monkeypatch.setattr(labelwise.data.tables, "NARROW_ABOVE_BYTES", 0)
    narrow = labelwise.fit(frame, target="label", epochs=3, folds=folds, progress=False)
    np.testing.assert_array_equal(narrow.predict_proba(test), wide.predict_proba(test))
