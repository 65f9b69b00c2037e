"""`large_blocks_kept`: stop glibc handing large freed blocks back to the OS between training steps.

glibc serves an allocation of more than 32 MB (its largest dynamic mmap threshold) with a fresh ``mmap`` and
unmaps it when freed, so a tensor that size made and freed every step is paid for again in page faults each time.
A huge head's weight gradient is one ((50,000, 256) float32 is 51 MB): a sampled-softmax step on 2 CPU threads took
43 ms, of which 15 ms were faults, and 28 ms with the blocks kept (`benchmarks/huge_table.py`). PyTorch's CPU
tuning guide gets the same by swapping in jemalloc or tcmalloc; this keeps glibc and tells it, through
``mallopt``, to serve blocks up to `MMAP_THRESHOLD` from its heap and to keep up to `TRIM_THRESHOLD` of freed heap.
A kept block is reused by the next step's tensor of the same size; what training kept is handed back when it ends
(kept on through the later stages, it raised that run's peak from 2.05 to 2.94 GB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "large_blocks_kept"]

# Blocks up to 256 MB (a (250,000, 256) float32 gradient) come from the heap; at most 256 MB of freed heap is kept.
MMAP_THRESHOLD = TRIM_THRESHOLD = 256 << 20
# glibc's own limits, restored afterwards: the largest dynamic mmap threshold, and its default trim threshold.
_DEFAULT_MMAP, _DEFAULT_TRIM = 32 << 20, 128 << 10
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    except (OSError, AttributeError):  # musl and others: no mallopt, nothing to tune
        return None
    return libc


@contextmanager
def large_blocks_kept() -> Iterator[bool]:
    """Within the block, glibc keeps large freed blocks (the module docstring); after it, the freed memory goes back
    to the OS, so the later stages do not pile their own allocations on top of what training kept. Yields False
    where the C library is not glibc (nothing is changed)."""
    libc = _libc()
    kept = libc is not None and bool(
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    try:
        yield kept
    finally:
        if kept:
            libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM)
            libc.malloc_trim(0)
