"""Shared fixtures; the seeded factories live in `_factories` so tests can import them."""

from __future__ import annotations

import pytest

from _factories import KINDS
from labelwise.task import TaskKind


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> TaskKind:
    """Each of binary, multiclass, multilabel in turn."""
    return TaskKind(request.param)
