"""The ``"concat"`` backbone: one backbone per input group, their features concatenated, then a fusion MLP.

Ludwig's concat combiner, smaller. The fusion layers matter: a linear head on concatenated features scores each
group separately and adds the scores, so it cannot learn a label that depends on two groups together (image XOR
column); one hidden layer after the concatenation can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from labelwise.errors import ConfigError
from labelwise.models.head import ModelSpec
from labelwise.models.mlp import TabularMLP
from labelwise.models.registry import create_backbone, register_backbone

__all__ = ["COMBINER", "FUSION_HIDDEN", "ConcatBackbone", "concat"]

COMBINER = "concat"
FUSION_HIDDEN = (128,)


class ConcatBackbone(nn.Module):
    """``fusion(cat([parts[k](x[k]) for k in parts]))``: features ``(N, num_features)`` of a dict of group inputs.

    Args:
        parts: one backbone per input group, each with ``num_features``; the dict's keys are the groups' keys.
        hidden: widths of the fusion MLP's layers (BatchNorm, GELU, dropout; see `TabularMLP`).
        dropout: the fusion MLP's dropout.
    """

    def __init__(self, parts: Mapping[str, nn.Module], *, hidden: Sequence[int], dropout: float = 0.1) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        width = sum(cast(int, part.num_features) for part in parts.values())  # each backbone declares it
        self.fusion = TabularMLP(width, hidden=hidden, dropout=dropout)
        self.num_features = self.fusion.num_features
        # A part that fine-tunes pretrained weights (``fine_tunes``: the Hugging Face text encoder) sets the whole
        # network's lr and weight decay: the default steps of the fresh layers would wreck its weights in the first
        # epoch, while at its steps the fresh layers only learn more slowly. None: the trainer's defaults.
        tuned: list[Any] = [part for part in parts.values() if getattr(part, "fine_tunes", False)]
        self.preferred_lr = min((float(part.preferred_lr) for part in tuned), default=None)
        self.preferred_weight_decay = min((float(part.preferred_weight_decay) for part in tuned), default=None)

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Features ``(N, num_features)`` float of ``x``, one batch per group key."""
        missing = [key for key in self.parts if key not in x]
        if missing:
            raise ConfigError(
                f"the combined backbone got inputs {sorted(x)} but needs {list(self.parts)}; pass one batch per group "
                "(what `Inputs.batch_transform` returns)."
            )
        return self.fusion(torch.cat([part(x[key]) for key, part in self.parts.items()], dim=1))  # type: ignore[no-any-return]


@register_backbone(COMBINER)
def concat(
    *,
    in_features: int | None,
    in_chans: int | None,
    pretrained: bool,
    parts: Mapping[str, Mapping[str, Any]],
    hidden: Sequence[int] = FUSION_HIDDEN,
    dropout: float = 0.1,
) -> ConcatBackbone:
    """Build each group's backbone from its `ModelSpec` dict in ``parts``, and the fusion MLP over them.

    ``pretrained`` False builds every part without pretrained weights (an artifact loads its own right after).

    Example:
        >>> parts = {"features": {"backbone": "mlp", "in_features": 3}, "image": {"backbone": "cnn", "in_chans": 1}}
        >>> net = create_backbone("concat", parts=parts)
        >>> net({"features": torch.zeros(2, 3), "image": torch.zeros(2, 1, 16, 16)}).shape
        torch.Size([2, 128])
    """
    if in_features is not None or in_chans is not None:
        raise ConfigError(
            "the 'concat' backbone takes each group's input size in `parts`, not in_features or in_chans; drop them."
        )
    if len(parts) < 2:
        raise ConfigError(f"the 'concat' backbone joins two or more groups; got parts={list(parts)}.")
    specs = {key: ModelSpec.from_dict(part) for key, part in parts.items()}
    built = {
        key: create_backbone(
            spec.backbone,
            in_features=spec.in_features,
            in_chans=spec.in_chans,
            pretrained=pretrained and spec.pretrained,
            **spec.options,
        )
        for key, spec in specs.items()
    }
    return ConcatBackbone(built, hidden=tuple(hidden), dropout=dropout)
