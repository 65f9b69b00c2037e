"""Exact top-k classes of a huge head, and the log-sum-exp that turns them into probabilities, in class chunks.

See `labelwise.huge.chunked`: the (N, C) logits are never built; each chunk's top-k merges into a running one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from labelwise.errors import ConfigError
from labelwise.huge.chunked import DEFAULT_CHUNK, _acc_dtype, _check_head, _chunk_logits, _chunks

__all__ = ["ROW_BLOCK", "TopK", "chunked_top_k"]

# `chunked_top_k` ranks at most this many rows at a time: (1024, 8192) logits are 32 MB, where all 10,000
# validation rows of a large run at once held ~1 GB of logits and their temporaries per chunk.
ROW_BLOCK = 1024


@dataclass(frozen=True, eq=False)
class TopK:
    """The k most likely classes of each row, and the normaliser that turns their logits into probabilities.

    Attributes:
        values: (N, k) float logits / temperature, descending along each row.
        indices: (N, k) long class indices; ties go to the lower index, as a stable sort would.
        logsumexp: (N,) float log-sum-exp over ALL classes of logits / temperature.
    """

    values: torch.Tensor
    indices: torch.Tensor
    logsumexp: torch.Tensor

    def probs(self) -> torch.Tensor:
        """(N, k) softmax probabilities of the top-k classes (the full softmax, not renormalised over k)."""
        return torch.exp(self.values - self.logsumexp[:, None])


def _chunk_top_k(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of each row's k largest, lower index first among equals, indices sorted ascending.

    `torch.topk` does not promise which of several equal values it keeps at the k-th place, so we keep every
    value strictly above the k-th and then the first (k - that many) copies of the k-th value by position.
    """
    kth = torch.topk(logits, k, dim=1).values[:, -1:]
    above = logits > kth
    ties = logits == kth
    room = k - above.sum(1, keepdim=True)
    keep = above | (ties & (ties.cumsum(1) <= room))
    indices = keep.nonzero()[:, 1].view(logits.shape[0], k)
    return logits.gather(1, indices), indices


def _merge_top_k(
    best: tuple[torch.Tensor, torch.Tensor], new: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    # `best` holds lower class indices than `new`, each in index order among equal values, so a stable
    # descending sort of the concatenation breaks ties by the lower index.
    values = torch.cat([best[0], new[0]], dim=1)
    indices = torch.cat([best[1], new[1]], dim=1)
    values, order = torch.sort(values, dim=1, descending=True, stable=True)
    return values[:, :k], indices.gather(1, order[:, :k])


@torch.no_grad()
def chunked_top_k(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    k: int,
    temperature: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK,
) -> TopK:
    """Exact top-k classes over all C classes, and the exact log-sum-exp, without the (N, C) logits.

    Each chunk's top-k is merged into a running (N, k) top-k, and rows are ranked `ROW_BLOCK` at a time, so memory
    is O(min(N, ROW_BLOCK) * chunk_size + N * k).

    Args:
        features: (N, H) float.
        weight: (C, H) float.
        bias: (C,) float, or None.
        k: classes to keep per row, 1 <= k <= C.
        temperature: the calibrated temperature; values and logsumexp are of logits / temperature.
        chunk_size: classes per chunk.

    Returns:
        A `TopK`; ``.probs()`` are the top-k softmax probabilities.

    Raises:
        ConfigError: k, temperature or chunk_size out of range.
        DataError: features, weight and bias do not form a linear head.

    Example:
        >>> x, w = torch.ones(1, 2), torch.tensor([[0.0, 1.0], [2.0, 2.0], [1.0, 0.0], [3.0, 0.0]])
        >>> top = chunked_top_k(x, w, None, k=2, chunk_size=2)  # logits [1, 4, 1, 3]
        >>> top.indices
        tensor([[1, 3]])
        >>> top.probs().sum() < 1
        tensor(True)
    """
    _check_head(features, weight, bias, chunk_size=chunk_size)
    num_classes = weight.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_classes:
        raise ConfigError(f"k={k!r}; expected an int in [1, {num_classes}] (the number of classes). Lower --top-k.")
    if not temperature > 0:
        raise ConfigError(f"temperature={temperature!r}; expected a positive float. Use 1.0 for raw logits.")
    if features.shape[0] > ROW_BLOCK:
        blocks = [_top_k_rows(rows, weight, bias, k=k, temperature=temperature, chunk_size=chunk_size)
                  for rows in torch.split(features, ROW_BLOCK)]  # fmt: skip
        return TopK(*(torch.cat([getattr(b, name) for b in blocks]) for name in ("values", "indices", "logsumexp")))
    return _top_k_rows(features, weight, bias, k=k, temperature=temperature, chunk_size=chunk_size)


def _top_k_rows(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, k: int, temperature: float,
    chunk_size: int,
) -> TopK:  # fmt: skip
    num_classes = weight.shape[0]
    acc = _acc_dtype(features)
    empty = torch.empty(features.shape[0], 0, device=features.device)
    best = (empty.to(acc), empty.to(torch.long))
    total = torch.full((features.shape[0],), -torch.inf, dtype=acc, device=features.device)
    for start in _chunks(num_classes, chunk_size):
        stop = min(start + chunk_size, num_classes)
        logits = _chunk_logits(features, weight, bias, start, stop) / temperature
        total = torch.logaddexp(total, torch.logsumexp(logits, dim=1))
        values, indices = _chunk_top_k(logits, min(k, stop - start))
        best = _merge_top_k(best, (values, indices + start), k)
    return TopK(values=best[0], indices=best[1], logsumexp=total)
