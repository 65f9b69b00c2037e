"""Losses and outputs for heads with up to millions of classes, in plain torch.

- `chunked_cross_entropy`, `chunked_logsumexp`, `chunked_top_k`: exact, never build the (N, C) logits.
- `sampled_softmax_loss`, `sampled_bce_loss` with a `Proposal`: estimates on K shared negatives, O(N K H).
- `choose_head_loss`: which of full / chunked / sampled to use, and why.
"""

from __future__ import annotations

from labelwise.huge.choice import choose_head_loss as choose_head_loss
from labelwise.huge.chunked import DEFAULT_CHUNK as DEFAULT_CHUNK
from labelwise.huge.chunked import chunked_cross_entropy as chunked_cross_entropy
from labelwise.huge.chunked import chunked_logsumexp as chunked_logsumexp
from labelwise.huge.sampled import DEFAULT_NUM_SAMPLED as DEFAULT_NUM_SAMPLED
from labelwise.huge.sampled import PROPOSAL_KINDS as PROPOSAL_KINDS
from labelwise.huge.sampled import Proposal as Proposal
from labelwise.huge.sampled import sampled_bce_loss as sampled_bce_loss
from labelwise.huge.sampled import sampled_softmax_loss as sampled_softmax_loss
from labelwise.huge.top_k import ROW_BLOCK as ROW_BLOCK
from labelwise.huge.top_k import TopK as TopK
from labelwise.huge.top_k import chunked_top_k as chunked_top_k

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_NUM_SAMPLED",
    "PROPOSAL_KINDS",
    "ROW_BLOCK",
    "Proposal",
    "TopK",
    "choose_head_loss",
    "chunked_cross_entropy",
    "chunked_logsumexp",
    "chunked_top_k",
    "sampled_bce_loss",
    "sampled_softmax_loss",
]
