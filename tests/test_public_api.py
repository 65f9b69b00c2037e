"""The public surface: `labelwise.__all__` is exactly what the package exports, and every name resolves."""

from __future__ import annotations

import pytest

import labelwise


def test_all_is_sorted_and_complete() -> None:
    assert labelwise.__all__ == sorted(labelwise.__all__)
    public = {name for name in dir(labelwise) if not name.startswith("_")} | {"__version__"}
    assert set(labelwise.__all__) == public


@pytest.mark.parametrize("name", labelwise.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(labelwise, name) is not None


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        labelwise.fitt  # noqa: B018 - the attribute access is the test
