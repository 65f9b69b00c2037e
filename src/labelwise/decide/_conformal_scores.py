"""Conformal nonconformity scores of every class, and the per-item ``u`` that randomises APS and RAPS.

The rules are in `labelwise.decide.conformal`'s docstring; this module computes them, in row chunks, with the
hash that makes ``u`` a function of the item's probability row (so saving, loading or batching never changes a set).
"""

from __future__ import annotations

import torch

__all__ = ["all_scores", "uniforms"]

# Rows scored per chunk: bounds the float64 (rows, num_classes) intermediates to ~32 MB each.
_CHUNK_ELEMENTS = 4_000_000


def _signed(value: int) -> int:
    """A 64-bit unsigned constant as the int64 of the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def all_scores(probs: torch.Tensor, *, method: str, penalty: float | None, k_reg: int | None) -> torch.Tensor:
    """Every class's score ``(N, C)`` float64, in row chunks: each row's scores depend on that row alone."""
    chunk = max(1, _CHUNK_ELEMENTS // probs.shape[1])
    parts = [probs[i : i + chunk].double() for i in range(0, len(probs), chunk)]
    if method == "threshold":
        return torch.cat([1 - part for part in parts])
    return torch.cat([_ranked_scores(part, penalty=penalty or 0.0, k_reg=k_reg or 0) for part in parts])


def _ranked_scores(probs: torch.Tensor, *, penalty: float, k_reg: int) -> torch.Tensor:
    """APS (``penalty`` 0) and RAPS scores: mass ranked above + ``u`` * own + ``penalty * max(0, rank - k_reg)``."""
    ordered, order = torch.sort(probs, dim=1, descending=True, stable=True)
    above = torch.cumsum(ordered, dim=1) - ordered
    # cumsum - ordered may differ from the exact sum above by an ulp; harmless, it is the same in fit and sets.
    ranks = torch.arange(1, probs.shape[1] + 1, dtype=torch.float64, device=probs.device)
    ranked = above + uniforms(probs)[:, None] * ordered + penalty * (ranks - k_reg).clamp(min=0)
    return torch.empty_like(ranked).scatter_(1, order, ranked)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` copies the sign bit)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(x: torch.Tensor) -> torch.Tensor:
    z = x + _GOLDEN
    z = (z ^ _shift_right(z, 30)) * _MIX1
    z = (z ^ _shift_right(z, 27)) * _MIX2
    return z ^ _shift_right(z, 31)


def uniforms(probs: torch.Tensor) -> torch.Tensor:
    """One ``u`` in [0, 1) per row, ``(N,)`` float64, hashed from the row's float32 bit patterns (module docstring)."""
    rounded = probs.to(torch.float32) + 0.0  # + 0.0 turns -0.0 into 0.0: equal values, equal bits
    bits = rounded.contiguous().view(torch.int32).long() & 0xFFFFFFFF
    columns = torch.arange(probs.shape[1], dtype=torch.int64, device=probs.device)
    mixed = _splitmix64(bits ^ _splitmix64(columns)).sum(dim=1)
    return _shift_right(_splitmix64(mixed), 11).double() / 2.0**53
