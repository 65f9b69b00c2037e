"""What each head type does: width, activation, targets, probabilities and loss, in one table (`HEADS`).

`labelwise.task.Task` answers every head-dependent question (``head_width``, ``activation``, ``loss_name``,
``target_dtype``, ``probabilities``, ``bce_targets``) by looking its ``head`` up here, and `labelwise.losses`
builds its loss from the same entry, so a head type is added or changed in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from labelwise._kinds import HeadType

if TYPE_CHECKING:
    import torch

# torch is imported inside each function, not here: `Task` reads this table, and `labelwise inspect` and
# `predict --backend onnx` use a Task without ever building a tensor (they must not pay torch's import).

__all__ = ["HEADS", "IMBALANCE_RATIO", "HeadBehaviour", "LossFn"]

# (logits, targets as `Task.encode` makes them, the head's loss weight or None, label smoothing) -> mean loss.
LossFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor | None", float], "torch.Tensor"]
_Targets01 = Callable[["torch.Tensor", int], "torch.Tensor"]
_Weights = Callable[["torch.Tensor", int], "torch.Tensor"]


@dataclass(frozen=True)
class HeadBehaviour:
    """One head type's behaviour.

    Args:
        one_logit: the head outputs one logit whatever the number of classes (else one per class).
        activation: ``"sigmoid"`` or ``"softmax"``.
        loss_name: the torch loss it trains with.
        target_dtype: dtype of `Task.encode`'s output, by name (``"float32"`` or ``"int64"``: numpy's and torch's).
        probabilities: logits ``(N, head_width)`` -> probabilities ``(N, num_classes)``.
        bce_targets: ``(targets, head_width)`` -> float 0/1 ``(N, head_width)`` for a sigmoid head; None for a
            softmax head, whose loss takes class indices.
        loss: the loss on ``(logits, targets)`` (`LossFn`).
        weight: which loss weight balances the classes: ``pos_weight`` (sigmoid) or ``class_weight`` (softmax).
        balanced_weight: ``(counts, num_samples)`` -> that weight, from the per-class (multilabel: per-label
            positive) counts of the training targets (`labelwise.losses.infer_balance`).
        sentence: the Task reason's sentence about the head; ``{num_classes}`` is filled in.
    """

    one_logit: bool
    activation: Literal["sigmoid", "softmax"]
    loss_name: str
    target_dtype: Literal["float32", "int64"]
    probabilities: Callable[[torch.Tensor], torch.Tensor]
    bce_targets: _Targets01 | None
    loss: LossFn
    weight: Literal["pos_weight", "class_weight"]
    balanced_weight: _Weights
    sentence: str


# -- probabilities ------------------------------------------------------------------------------------
def _one_logit_probabilities(logits: torch.Tensor) -> torch.Tensor:
    # Both columns, as sklearn's predict_proba: [1 - sigmoid(z), sigmoid(z)].
    import torch

    positive = torch.sigmoid(logits[:, 0])
    return torch.stack([1.0 - positive, positive], dim=1)


def _softmax_probabilities(logits: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.softmax(logits, dim=1)


def _one_vs_rest_probabilities(logits: torch.Tensor) -> torch.Tensor:
    # The sigmoids normalised to sum to 1: P(class | one of the known classes). softmax(logsigmoid) is that ratio
    # without the 0/0 of sigmoids that all underflow.
    import torch

    return torch.softmax(torch.nn.functional.logsigmoid(logits), dim=1)


def _sigmoid_probabilities(logits: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.sigmoid(logits)


# -- BCE targets --------------------------------------------------------------------------------------
def _float_targets(targets: torch.Tensor, width: int) -> torch.Tensor:
    import torch

    return targets.to(torch.float32).reshape(len(targets), width)


def _one_hot_targets(targets: torch.Tensor, width: int) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    return F.one_hot(targets.long(), width).to(torch.float32)


# -- losses -------------------------------------------------------------------------------------------
def _cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None, label_smoothing: float
) -> torch.Tensor:
    import torch.nn.functional as F

    return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)


def _bce(to_01: _Targets01) -> LossFn:
    """BCE with logits on ``to_01``'s float targets, smoothed toward 0.5."""

    def loss(
        logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None, label_smoothing: float
    ) -> torch.Tensor:
        import torch.nn.functional as F

        targets = to_01(targets, logits.shape[1])
        if label_smoothing:
            targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight)

    return loss


# -- balancing weights from training counts ------------------------------------------------------------
# Below this majority:minority ratio tuned thresholds absorb the imbalance; from it on, an unweighted loss
# is minimised well enough by predicting the majority that models collapse (the first seed article). Here rather
# than in `labelwise.losses` so that `labelwise inspect` can warn with it without importing torch.
IMBALANCE_RATIO = 10.0


def _inverse_frequency(counts: torch.Tensor, num_samples: int) -> torch.Tensor:
    # scikit-learn's class_weight="balanced": n / (C * count).
    return counts.sum() / (len(counts) * counts.clamp(min=1))


def _negatives_per_positive(counts: torch.Tensor, num_samples: int) -> torch.Tensor:
    # Per label (multilabel): negatives / positives.
    return (num_samples - counts) / counts.clamp(min=1)


def _negative_per_positive_class(counts: torch.Tensor, num_samples: int) -> torch.Tensor:
    # One logit: negatives / positives of the positive class, shape (1,).
    return (counts[0] / counts[1].clamp(min=1)).reshape(1)


def _most_frequent_per_class(counts: torch.Tensor, num_samples: int) -> torch.Tensor:
    # Each class's positives weigh as much as the most frequent class's: the between-class imbalance is undone,
    # the 1:(C-1) positives:negatives of one-vs-rest itself is not (the thresholds handle that).
    return counts.max() / counts.clamp(min=1)


def _softmax_head(sentence: str) -> HeadBehaviour:
    """A softmax head: one logit per class, cross-entropy on class indices."""
    return HeadBehaviour(
        one_logit=False,
        activation="softmax",
        loss_name="CrossEntropyLoss",
        target_dtype="int64",
        probabilities=_softmax_probabilities,
        bce_targets=None,
        loss=_cross_entropy,
        weight="class_weight",
        balanced_weight=_inverse_frequency,
        sentence=sentence,
    )


def _sigmoid_head(
    *,
    one_logit: bool,
    target_dtype: Literal["float32", "int64"],
    probabilities: Callable[[torch.Tensor], torch.Tensor],
    to_01: _Targets01,
    balanced_weight: _Weights,
    sentence: str,
) -> HeadBehaviour:
    """A sigmoid head: BCE with logits on ``to_01``'s float targets."""
    return HeadBehaviour(
        one_logit=one_logit,
        activation="sigmoid",
        loss_name="BCEWithLogitsLoss",
        target_dtype=target_dtype,
        probabilities=probabilities,
        bce_targets=to_01,
        loss=_bce(to_01),
        weight="pos_weight",
        balanced_weight=balanced_weight,
        sentence=sentence,
    )


HEADS: dict[HeadType, HeadBehaviour] = {
    HeadType.ONE_LOGIT: _sigmoid_head(
        one_logit=True,
        target_dtype="float32",
        probabilities=_one_logit_probabilities,
        to_01=_float_targets,
        balanced_weight=_negative_per_positive_class,
        sentence="One logit, sigmoid, BCEWithLogitsLoss with float targets.",
    ),
    HeadType.TWO_LOGITS: _softmax_head(
        "Two logits, softmax, CrossEntropyLoss with long targets (binary_head='two'; the same model as one logit)."
    ),
    HeadType.SOFTMAX: _softmax_head("{num_classes} logits, softmax, CrossEntropyLoss with long class-index targets."),
    HeadType.ONE_VS_REST: _sigmoid_head(
        one_logit=False,
        # Class indices, so that splits, metrics and decisions treat it as the single-label task it is; its loss
        # compares the logits with one-hot `bce_targets`.
        target_dtype="int64",
        probabilities=_one_vs_rest_probabilities,
        to_01=_one_hot_targets,
        balanced_weight=_most_frequent_per_class,
        sentence="{num_classes} logits, a sigmoid each, BCEWithLogitsLoss on one-hot targets (one-vs-rest, asked for "
        "so that no class above its threshold can mean none of these).",
    ),
    HeadType.MULTILABEL: _sigmoid_head(
        one_logit=False,
        target_dtype="float32",
        probabilities=_sigmoid_probabilities,
        to_01=_float_targets,
        balanced_weight=_negatives_per_positive,
        sentence="One logit per label, a sigmoid each, BCEWithLogitsLoss with float targets; an item may get no label.",
    ),
    HeadType.RANKED: _softmax_head(
        "{num_classes} logits, softmax, CrossEntropyLoss with long class-index targets; the logits are computed in "
        "class chunks, never all at once."
    ),
}
