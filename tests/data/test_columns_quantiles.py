"""The numeric columns' quantile map against scikit-learn's QuantileTransformer, and its storage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import QuantileTransformer

from labelwise.data._columns import NumericColumn, quantile_normal


@pytest.mark.parametrize("draw", ["lognormal", "normal", "uniform"])
def test_the_quantile_map_is_scikit_learns_on_values_without_ties(draw: str) -> None:
    rng = np.random.default_rng(0)
    train = getattr(rng, draw)(size=3000)
    column = NumericColumn.fit(pd.Series(train), "x")
    assert column.quantiles is not None and len(column.quantiles) == 100  # one per 30 rows
    reference = QuantileTransformer(n_quantiles=100, output_distribution="normal", subsample=None)
    reference.fit(train[:, None])
    new = np.concatenate([getattr(rng, draw)(size=500), [train.min() - 1, train.max() + 1]])
    np.testing.assert_allclose(column.scale(new), reference.transform(new[:, None])[:, 0], atol=1e-7)


def test_a_binary_column_maps_to_two_values_symmetric_about_their_share() -> None:
    column = NumericColumn.fit(pd.Series([0.0] * 300 + [1.0] * 300), "flag")
    low, high = column.scale(np.array([0.0, 1.0]))
    assert low == pytest.approx(-high, abs=1e-6) and -1.5 < low < -0.3  # not scikit-learn's -5.2 / +5.2


def test_quantiles_round_trip_and_old_runs_keep_standardizing() -> None:
    column = NumericColumn.fit(pd.Series(np.arange(100.0)), "x")
    again = NumericColumn.from_dict(column.to_dict())
    assert again == column
    old = {key: value for key, value in column.to_dict().items() if key != "quantiles"}
    standardized = NumericColumn.from_dict(old)
    np.testing.assert_allclose(standardized.scale(np.array([column.mean])), [0.0])


def test_quantile_normal_is_monotone() -> None:
    values = np.linspace(-3, 3, 50)
    mapped = quantile_normal(values, np.sort(np.random.default_rng(1).normal(size=40)))
    assert (np.diff(mapped) >= 0).all()
