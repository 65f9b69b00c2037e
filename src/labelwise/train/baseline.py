"""No learning: the constant-prediction baseline and the rule `labelwise.train.guards.LearningGuard` applies.

The baseline is `constant_loss`: the validation loss of the best constant prediction, fitted on the training
targets under the training loss itself (for an unweighted loss: the training label frequencies; with class
weights or label smoothing: the constant that loss prefers, which with ``pos_weight`` is far from the
frequencies). Learning only the output bias reaches it, so a model that learned anything from its inputs scores
below it.

The finding (`is_not_learning`) comes when no validation pass has scored below the baseline and the loss has
stopped falling: the best pass is `STALL_PASSES` = 3 passes old (so at the earliest after 4 passes), or, once
fit has ended, the last pass was not the best. A loss still falling is a model still learning: a one-cycle
schedule starts at a 25th of the learning rate, and a working model may stay above the baseline for many passes
(12 on the imbalanced cancer demo with ``balance="none"``), its loss falling every pass. On small validation sets
one or two passes above the best are common while the trend still falls (the demos' default runs show such
pairs); three in a row is a plateau, and still well before early stopping (patience 8) ends the run.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from labelwise.task import HeadType, Task, TaskKind

__all__ = ["STALL_PASSES", "constant_loss", "is_not_learning"]

STALL_PASSES = 3
# The constant is fitted on at most this many logits (rows x head width): an unbiased sample of the rows
# estimates a constant's mean loss well, and a (N, C) tensor of a million rows and a thousand classes would not fit.
_MAX_CONSTANT_LOGITS = 2**22


def constant_loss(loss_fn: nn.Module, task: Task, *, train_targets: torch.Tensor, valid_targets: torch.Tensor) -> float:
    """The validation loss of the best constant prediction, fitted on the training targets.

    The constant logits (one per head output) minimise ``loss_fn`` on the training targets: for an unweighted
    loss they are the training label frequencies (the sigmoid or softmax of them equals the frequencies), with
    class weights or label smoothing the constant that loss prefers. A network that learns only its output bias
    reaches this loss; one that learned anything from its inputs scores below it.

    Args:
        loss_fn: ``loss_fn(logits, targets)`` -> mean loss, as the model trains with (e.g. `loss_for(task)`).
        task: the Task the targets encode.
        train_targets: ``task.encode`` targets of the training rows.
        valid_targets: the same for the validation rows.

    Example:
        >>> from labelwise.losses import loss_for
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> loss = loss_for(task)  # predicting P(yes) = 1/4 for both rows: (-log 1/4 - log 3/4) / 2
        >>> round(constant_loss(loss, task, train_targets=torch.tensor([1.0, 0.0, 0.0, 0.0]),
        ...                     valid_targets=torch.tensor([1.0, 0.0])), 4)
        0.837
    """
    bias = _fit_constant(loss_fn, task, _sample(train_targets, task))
    valid = _sample(valid_targets, task)
    with torch.no_grad():
        return float(loss_fn(bias.expand(len(valid), -1), valid))


def _fit_constant(loss_fn: nn.Module, task: Task, targets: torch.Tensor) -> torch.Tensor:
    """Constant logits ``(1, head_width)`` minimising ``loss_fn`` on ``targets`` (convex: L-BFGS converges)."""
    bias = _frequency_logits(targets, task).requires_grad_(True)
    optimizer = torch.optim.LBFGS([bias], lr=1.0, max_iter=50, tolerance_grad=1e-7, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss: torch.Tensor = loss_fn(bias.expand(len(targets), -1), targets)
        torch.autograd.backward(loss)
        return loss

    with torch.enable_grad():
        optimizer.step(closure)  # type: ignore[no-untyped-call]
    return bias.detach()


def _frequency_logits(targets: torch.Tensor, task: Task) -> torch.Tensor:
    """Logits of the training frequencies, smoothed by half an item per class (Krichevsky-Trofimov) so that a
    class absent from the training targets starts finite."""
    if task.kind is TaskKind.MULTILABEL:
        positives = targets.float().sum(dim=0)
        freq = (positives + 0.5) / (len(targets) + 1.0)
    else:
        counts = torch.bincount(targets.long(), minlength=task.num_classes).float()
        freq = (counts + 0.5) / (len(targets) + 0.5 * task.num_classes)
    if task.activation == "softmax":
        return freq.log().reshape(1, -1)
    logits = torch.logit(freq)
    return (logits[1:] if task.head is HeadType.ONE_LOGIT else logits).reshape(1, -1)


def _sample(targets: torch.Tensor, task: Task) -> torch.Tensor:
    rows = max(1, _MAX_CONSTANT_LOGITS // task.head_width)
    if len(targets) <= rows:
        return targets
    generator = torch.Generator().manual_seed(0)
    return targets[torch.randperm(len(targets), generator=generator)[:rows]]


def is_not_learning(val_losses: list[float], baseline: float, *, final: bool = False) -> bool:
    """Whether the validation losses so far say the model learns nothing beyond a constant prediction.

    True when no pass scored below ``baseline`` and the loss stopped falling: during training, the best pass is
    `STALL_PASSES` or more passes old; when fit has ended (``final=True``), the last pass was not the best. A loss
    that is still falling is a model still learning, however slowly (a short run, or the one-cycle warm-up).

    Example:
        >>> is_not_learning([0.70, 0.69, 0.70, 0.71, 0.70], 0.69), is_not_learning([0.70, 0.68], 0.69)
        (True, False)
        >>> is_not_learning([0.90, 0.80, 0.75], 0.69, final=True), is_not_learning([0.90, 0.75, 0.80], 0.69, final=True)
        (False, True)
    """
    losses = [loss if math.isfinite(loss) else math.inf for loss in val_losses]
    if not losses or min(losses) < baseline:
        return False
    since_best = len(losses) - 1 - losses.index(min(losses))
    return since_best >= (1 if final else STALL_PASSES)
