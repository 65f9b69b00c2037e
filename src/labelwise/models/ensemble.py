"""A bagged ensemble: k networks of one architecture, each trained on all rows but one fold, logits averaged.

Averaging logits (not probabilities) keeps one set of logits that the head calibrates and thresholds like any
network's: the same temperature scaling, tuned thresholds and conformal scores apply, fitted on the out-of-fold
logits of every training row (`labelwise.train.bagging`). The ensemble is one `nn.Module`, so its weights go into
the run's one safetensors file (``members.0.…``, ``members.1.…``) and it exports to ONNX as one graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """``logits = mean(member(x) for member in members)``.

    Args:
        members: two or more networks with the same output width.

    Example:
        >>> ens = Ensemble([nn.Linear(3, 2), nn.Linear(3, 2)])
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(ens(x), (ens.members[0](x) + ens.members[1](x)) / 2)
        True
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.num_features = getattr(members[0], "num_features", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean logits ``(N, head_width)`` of the members on batch ``x``."""
        logits = self.members[0](x)
        for member in self.members[1:]:
            logits = logits + member(x)
        return logits / len(self.members)  # type: ignore[no-any-return]
