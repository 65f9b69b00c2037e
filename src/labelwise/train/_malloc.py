"""`keep_large_blocks`: stop glibc handing large freed blocks back to the OS between training steps.

glibc serves an allocation of more than 32 MB (its largest dynamic mmap threshold) with a fresh ``mmap`` and
unmaps it when freed, so a tensor that size made and freed every step is paid for again in page faults each time.
A huge head's weight gradient is one ((50,000, 256) float32 is 51 MB): a sampled-softmax step on 2 CPU threads took
43 ms, of which 15 ms were faults, and 28 ms with the blocks kept (`benchmarks/huge_table.py`). PyTorch's CPU
tuning guide gets the same by swapping in jemalloc or tcmalloc; this keeps glibc and tells it, through
``mallopt``, to serve blocks up to `MMAP_THRESHOLD` from its heap and to keep up to `TRIM_THRESHOLD` of freed heap.
Peak memory is unchanged: a kept block is reused by the next step's tensor of the same size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_large_blocks"]

# Blocks up to 256 MB (a (250,000, 256) float32 gradient) come from the heap; at most 256 MB of freed heap is kept.
MMAP_THRESHOLD = TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


def keep_large_blocks() -> bool:
    """Set glibc's thresholds as the module docstring says; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt, nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
