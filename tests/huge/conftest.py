"""One intra-op thread for these tests: their tensors are tiny, and on a busy 2-core machine a second thread
spinning on each of ~2000 small matmuls made the Monte-Carlo tests 30x slower."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
