"""The numeric columns' quantile map against scikit-learn's QuantileTransformer, their bins, and their storage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import QuantileTransformer

from labelwise.data._columns import NumericColumn, piecewise_linear


@pytest.mark.parametrize("draw", ["lognormal", "normal", "uniform"])
def test_the_quantile_map_is_scikit_learns_at_the_knots_and_close_between(draw: str) -> None:
    rng = np.random.default_rng(0)
    train = getattr(rng, draw)(size=3000)
    column = NumericColumn.fit(pd.Series(train), "x")
    assert column.quantiles is not None and len(column.quantiles) == 100  # one per 30 rows
    reference = QuantileTransformer(n_quantiles=100, output_distribution="normal", subsample=None)
    reference.fit(train[:, None])
    knots = np.asarray(column.quantiles)
    np.testing.assert_allclose(column.scale(knots), reference.transform(knots[:, None])[:, 0], atol=1e-6)
    # Between knots the map is linear in the normal scores, scikit-learn's in the levels: they differ a little.
    inner = rng.uniform(np.quantile(train, 0.02), np.quantile(train, 0.98), size=500)
    np.testing.assert_allclose(column.scale(inner), reference.transform(inner[:, None])[:, 0], atol=0.05)
    beyond = np.array([train.min() - 1, train.max() + 1])
    np.testing.assert_allclose(column.scale(beyond), [-5.199, 5.199], atol=1e-3)  # as scikit-learn clips


def test_a_binary_column_maps_to_two_values_symmetric_about_their_share() -> None:
    column = NumericColumn.fit(pd.Series([0.0] * 300 + [1.0] * 300), "flag")
    low, high = column.scale(np.array([0.0, 1.0]))
    assert low == pytest.approx(-high, abs=1e-6) and -1.5 < low < -0.3  # not scikit-learn's -5.2 / +5.2
    assert column.edges is None and column.width == 1  # two values: no bins to encode


def test_bins_encode_how_far_a_value_has_come_through_each() -> None:
    column = NumericColumn.fit(pd.Series(np.arange(1000.0)), "x")
    assert column.edges is not None and column.num_bins == 16 and column.width == 17
    out = np.zeros((3, column.width))
    assert column.write(pd.Series([-5.0, 500.0, 5000.0]), out) is None
    np.testing.assert_allclose(out[0, 1:], 0.0)
    np.testing.assert_allclose(out[2, 1:], 1.0)
    np.testing.assert_allclose(out[1, 1:], piecewise_linear(np.array([500.0]), np.asarray(column.edges))[0])
    assert out[1, 1:].sum() == pytest.approx(8.0, abs=0.02)  # half way: 8 of 16 bins passed


def test_quantiles_round_trip_and_old_runs_keep_standardizing() -> None:
    column = NumericColumn.fit(pd.Series(np.arange(100.0)), "x")
    assert NumericColumn.from_dict(column.to_dict()) == column
    old = {key: value for key, value in column.to_dict().items() if key not in ("quantiles", "scores", "edges")}
    standardized = NumericColumn.from_dict(old)
    assert standardized.width == 1
    np.testing.assert_allclose(standardized.scale(np.array([column.mean])), [0.0])


def test_the_map_rises_with_the_values() -> None:
    column = NumericColumn.fit(pd.Series(np.random.default_rng(1).normal(size=400)), "x")
    assert (np.diff(column.scale(np.linspace(-4, 4, 200))) >= 0).all()
