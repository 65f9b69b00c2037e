"""The text backbones: ``EmbeddingBag``s over packed TF-IDF vectors (`labelwise.inputs.text`).

``EmbeddingBag(mode="sum")`` with the TF-IDF weights as per-sample weights is the product of each row's TF-IDF
vector with a ``(vocabulary, dim)`` matrix, computed from the row's nonzero terms only: the first layer of a network
on the full vector, at the cost of the row's length rather than the vocabulary's. fastText is the same design on
hashed n-grams without the idf weights.

* ``textlinear`` (the default for text without images): the bag maps straight to one score per logit, plus a
  linear layer on the table's other features when there are any, so the network is a linear model of its inputs.
  `labelwise.train.solve` fits it exactly (full-batch L-BFGS, the L2 strength chosen on validation), as
  scikit-learn fits logistic regression; its `Network` head is the identity.
* ``textbag``: the bag maps to ``dim`` features that a combiner mixes with an image backbone's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import nn

from labelwise.errors import ConfigError
from labelwise.models.head import ModelSpec
from labelwise.models.registry import register_backbone
from labelwise.task import Task

__all__ = ["LINEAR", "TABLE_LINEAR", "TextBag", "TextLinear", "linear", "sized_for", "textbag", "textlinear"]

LINEAR = "textlinear"
TABLE_LINEAR = "linear"  # the same model without text: a table's features alone
TEXT, FEATURES = "text", "features"  # the input groups' keys (`labelwise.inputs`)
_DIM = 128
# Measured on the `fortunes` corpus (benchmarks/text_baselines.py, 15 topics) for the bag trained by AdamW: lr 1e-2
# reached 0.59 where the tabular default 3e-3 reached 0.585 in twice the epochs; decoupled weight decay 1.0 raised
# it to 0.64 (0.05: 0.59), because AdamW moves a rare n-gram's weight by a full step whenever it occurs.
PREFERRED_LR = 1e-2
PREFERRED_WEIGHT_DECAY = 1.0


def _bag(vocabulary_size: int, dim: int) -> nn.EmbeddingBag:
    return nn.EmbeddingBag(vocabulary_size + 1, dim, mode="sum", padding_idx=vocabulary_size)


def _bag_sum(bag: nn.EmbeddingBag, packed: torch.Tensor) -> torch.Tensor:
    """``(N, 2, L)`` packed (term index, weight) rows -> the weighted sum of their terms' vectors."""
    return bag(packed[:, 0].long(), per_sample_weights=packed[:, 1])  # type: ignore[no-any-return]


class TextBag(nn.Module):
    """``(N, 2, L)`` packed rows -> ``(N, dim)`` features (trained by AdamW inside a combiner).

    Args:
        vocabulary_size: number of terms; index ``vocabulary_size`` is padding (weight 0, vector 0).
        dim: the width of the features.
        dropout: dropout on the features.
    """

    preferred_lr = PREFERRED_LR
    preferred_weight_decay = PREFERRED_WEIGHT_DECAY

    def __init__(self, vocabulary_size: int, *, dim: int = _DIM, dropout: float = 0.2) -> None:
        super().__init__()
        self.bag = _bag(vocabulary_size, dim)
        self.dropout = nn.Dropout(dropout)
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, dim)`` of packed rows ``x: (N, 2, L)``."""
        return self.dropout(_bag_sum(self.bag, x))  # type: ignore[no-any-return]


class TextLinear(nn.Module):
    """Packed text rows, and optionally the table's feature vector -> ``(N, width)`` scores, linear in both.

    Args:
        vocabulary_size: number of terms of the text group.
        width: the number of logits (the Task's head width); the `Network` head on top is the identity.
        features: width of the table's feature vector beside the text, 0 for text alone.

    Input: the packed text tensor, or ``{"text": packed, "features": (N, features)}``; with no vocabulary (the
    ``linear`` backbone of a table), the feature vector ``(N, features)``.
    """

    solved = True  # `labelwise.train.solve` fits it; no optimizer steps needed

    def __init__(self, vocabulary_size: int, *, width: int, features: int = 0) -> None:
        super().__init__()
        self.bag = _bag(vocabulary_size, width) if vocabulary_size else None
        self.features = nn.Linear(features, width, bias=False) if features else None
        for part in (self.bag, self.features):
            if part is not None:
                nn.init.zeros_(part.weight)
        self.num_features = width

    def forward(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scores ``(N, width)``."""
        if not isinstance(x, Mapping):  # one group: the text, or the features of a table without text
            return _bag_sum(self.bag, x) if self.bag is not None else self.features(x)  # type: ignore[misc]
        scores = _bag_sum(self.bag, x[TEXT]) if self.bag is not None else 0.0
        return scores if self.features is None else scores + self.features(x[FEATURES])  # type: ignore[return-value]


def _check_vocabulary(name: str, in_features: int | None, in_chans: int | None, pretrained: bool) -> int:
    if in_chans is not None or pretrained:
        raise ConfigError(f"the {name!r} backbone reads TF-IDF vectors of text columns; it has no channels or weights.")
    if in_features is None or in_features < 1:
        raise ConfigError(f"the {name!r} backbone needs in_features, the vocabulary size; got {in_features!r}.")
    return in_features


@register_backbone("textbag")
def textbag(
    *, in_features: int | None, in_chans: int | None, pretrained: bool, dim: int = _DIM, dropout: float = 0.2
) -> TextBag:
    """Build the text bag over a vocabulary of ``in_features`` terms.

    Example:
        >>> from labelwise.models import create_backbone
        >>> rows = torch.tensor([[[0.0, 2.0, 3.0], [0.6, 0.8, 0.0]]])  # terms 0 and 2; slot 3 is padding
        >>> create_backbone("textbag", in_features=3)(rows).shape
        torch.Size([1, 128])
    """
    return TextBag(_check_vocabulary("textbag", in_features, in_chans, pretrained), dim=dim, dropout=dropout)


@register_backbone(LINEAR)
def textlinear(
    *, in_features: int | None, in_chans: int | None, pretrained: bool, width: int = 1, features: int = 0
) -> TextLinear:
    """Build the linear text model over ``in_features`` terms (and ``features`` table features).

    Example:
        >>> from labelwise.models import create_backbone
        >>> rows = torch.tensor([[[0.0, 2.0, 3.0], [0.6, 0.8, 0.0]]])
        >>> create_backbone("textlinear", in_features=3, width=4)(rows).shape
        torch.Size([1, 4])
    """
    vocabulary = _check_vocabulary(LINEAR, in_features, in_chans, pretrained)
    return TextLinear(vocabulary, width=width, features=features)


@register_backbone(TABLE_LINEAR)
def linear(*, in_features: int | None, in_chans: int | None, pretrained: bool, width: int = 1) -> TextLinear:
    """Build a linear model of a table's ``in_features`` features, solved like the text one (``--model linear``).

    Example:
        >>> from labelwise.models import create_backbone
        >>> create_backbone("linear", in_features=3, width=2)(torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """
    if in_chans is not None or pretrained or in_features is None or in_features < 1:
        raise ConfigError(
            f"the 'linear' backbone reads a table's feature vector (in_features={in_features!r}); it has no channels "
            "or pretrained weights. Use it on a table: --model linear."
        )
    return TextLinear(0, width=width, features=in_features)


def sized_for(spec: ModelSpec, task: Task) -> ModelSpec:
    """``spec`` with a solved linear model's width set to the Task's head width (other specs unchanged)."""
    if spec.backbone not in (LINEAR, TABLE_LINEAR):
        return spec
    return replace(spec, options={**spec.options, "width": task.head_width})
