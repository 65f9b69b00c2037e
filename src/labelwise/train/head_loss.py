"""The loss of a large head, computed from the backbone's features and the head's weights.

`torch.nn.functional.cross_entropy` needs the ``(batch, classes)`` logits and their gradient: at a million
classes and a batch of 512 that is 4 GB per step. A `HeadLoss` never builds them: it takes the features
``(N, F)`` and the head (``nn.Linear(F, C)``) and trains with the chunked exact softmax or with candidate
sampling (`labelwise.huge`). Validation always scores the exact full softmax (chunked), never the sampled
estimate, so early stopping and the reported losses mean the same for every choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from labelwise._class_file import count_targets
from labelwise.decide.config import DecideConfig
from labelwise.errors import ConfigError
from labelwise.heads.ranked import check_ranked_decide, uses_ranked_path
from labelwise.huge import (
    DEFAULT_CHUNK,
    DEFAULT_NUM_SAMPLED,
    ROW_BLOCK,
    Proposal,
    choose_head_loss,
    chunked_cross_entropy,
    sampled_bce_loss,
    sampled_softmax_loss,
)
from labelwise.losses import Balance, loss_for
from labelwise.task import HeadType, Task
from labelwise.train.config import TrainConfig

__all__ = ["HeadLoss", "build_loss"]


def build_loss(
    task: Task,
    *,
    config: TrainConfig,
    balance: Balance,
    num_features: int,
    train_targets: torch.Tensor,
    decide: DecideConfig | None = None,
    cross_fitted: bool = False,
) -> tuple[nn.Module, dict[str, str]]:
    """The loss ``config.loss`` asks for (``auto``: `labelwise.huge.choose_head_loss`; ``full`` when
    `cross_fitted`, whose members keep every class's out-of-fold logits), and the run's record of it.

    The record: ``loss`` (full, chunked or sampled), ``reason`` (one sentence with the numbers), ``balance``
    (what became of the class weights), ``outputs`` (``"ranked"`` when validation and predictions rank the classes
    in chunks, `labelwise.heads.ranked.RankedHead`; else ``"logits"``).

    Raises:
        ConfigError: the loss does not fit the Task, or ``decide`` asks for what a ranked head cannot give.
    """
    full_for_members = cross_fitted and config.loss == "auto"
    if full_for_members:
        config = replace(config, loss="full")
    loss, record = _loss(task, config=config, balance=balance, num_features=num_features, train_targets=train_targets)
    if full_for_members:
        record["reason"] = "cross-fitted members are trained on the full logits, whose out-of-fold values are kept."
    record["outputs"] = "ranked" if uses_ranked_path(task, record["loss"]) else "logits"
    if record["outputs"] == "ranked" and decide is not None:
        check_ranked_decide(decide)
    return loss, record


def _loss(
    task: Task, *, config: TrainConfig, balance: Balance, num_features: int, train_targets: torch.Tensor
) -> tuple[nn.Module, dict[str, str]]:
    num_sampled = config.num_sampled or DEFAULT_NUM_SAMPLED
    name, reason = choose_head_loss(
        num_classes=task.num_classes,
        batch_size=config.resolve_batch_size(len(train_targets)),
        hidden=num_features,
        kind=str(task.kind),
        requested=config.loss,
        num_sampled=num_sampled,
    )
    record = {"loss": name, "reason": reason, "balance": balance.message}
    if name == "full" and not uses_ranked_path(task, name):
        full = loss_for(
            task,
            pos_weight=balance.pos_weight,
            class_weight=balance.class_weight,
            label_smoothing=config.label_smoothing,
        )
        return full, record
    if name in ("full", "chunked"):
        # A full softmax over more classes than the usual path's (N_valid, C) validation logits allow trains as it
        # is, and is validated and ranked in chunks like the chunked loss.
        loss = HeadLoss(
            task,
            method=name,
            class_weight=balance.class_weight,
            label_smoothing=config.label_smoothing,
            seed=config.seed,
        )
        return loss, record
    if balance.pos_weight is not None or balance.class_weight is not None:
        # The frequency proposal already shapes which negatives a class meets; the sampled softmax has no weights.
        record["balance"] = "no loss weights: --loss sampled trains without them (the counts shape the proposal)."
    counts = torch.tensor(count_targets(train_targets, task), dtype=torch.float32)
    proposal = Proposal.create(config.proposal, num_classes=task.num_classes, counts=counts)
    sampled = HeadLoss(
        task,
        method=name,
        proposal=proposal,
        num_sampled=num_sampled,
        label_smoothing=config.label_smoothing,
        seed=config.seed,
    )
    return sampled, record


def _softmax_from_logits(logits: torch.Tensor, targets: torch.Tensor, loss: HeadLoss) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, targets, weight=loss.class_weight, label_smoothing=loss.label_smoothing)


def _softmax_exact(features: torch.Tensor, head: nn.Linear, targets: torch.Tensor, loss: HeadLoss) -> torch.Tensor:
    """The exact mean loss, `ROW_BLOCK` rows at a time: validation batches of a grouped table loader hold 8,192 rows,
    whose (rows, chunk) logits and temporaries took ~1 GB at once. The weighted mean of the blocks' means, each
    weighted by its rows' class weights, is the mean ``F.cross_entropy`` takes."""
    total, weights = features.new_zeros((), dtype=torch.float32), 0.0
    for rows in torch.split(torch.arange(len(features), device=features.device), ROW_BLOCK):
        block = targets[rows]
        weight = len(rows) if loss.class_weight is None else float(loss.class_weight[block].sum())
        mean = chunked_cross_entropy(
            features[rows], head.weight, head.bias, block, chunk_size=DEFAULT_CHUNK, class_weight=loss.class_weight,
            label_smoothing=loss.label_smoothing,
        )  # fmt: skip
        total, weights = total + mean * weight, weights + weight
    return total / weights


def _sigmoid_from_logits(logits: torch.Tensor, targets: torch.Tensor, loss: HeadLoss) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits, targets.float())


def _sigmoid_exact(features: torch.Tensor, head: nn.Linear, targets: torch.Tensor, loss: HeadLoss) -> torch.Tensor:
    """Exact mean per-label BCE, one chunk of labels at a time (validation of a sampled multilabel head)."""
    total = features.new_zeros((), dtype=torch.float32)
    for start in range(0, head.out_features, DEFAULT_CHUNK):
        stop = min(start + DEFAULT_CHUNK, head.out_features)
        logits = features @ head.weight[start:stop].T + head.bias[start:stop]
        total = total + nn.functional.binary_cross_entropy_with_logits(
            logits.float(), targets[:, start:stop].float(), reduction="sum"
        )
    return total / targets.numel()


@dataclass(frozen=True)
class _HeadLosses:
    """How a head type's loss is computed without its logits matrix."""

    methods: tuple[str, ...]  # the methods it takes
    exact: Callable[[torch.Tensor, nn.Linear, torch.Tensor, HeadLoss], torch.Tensor]  # validation, from features
    from_logits: Callable[[torch.Tensor, torch.Tensor, HeadLoss], torch.Tensor]  # validation, from full logits
    sampled: Callable[..., torch.Tensor]  # training with sampled negatives
    # A softmax head's validation and predictions are ranked in chunks from the features; a multilabel head still
    # gives its (N, C) logits (its targets are dense (N, C) already).
    ranks_in_chunks: bool


# The head types a `HeadLoss` trains: one softmax over many classes, or one sigmoid per label. The others have
# one logit, or one per class of a few, which the full loss trains at no cost.
_HEAD_LOSSES: dict[HeadType, _HeadLosses] = {
    HeadType.SOFTMAX: _HeadLosses(
        ("full", "chunked", "sampled"), _softmax_exact, _softmax_from_logits, sampled_softmax_loss, True
    ),
    HeadType.MULTILABEL: _HeadLosses(("sampled",), _sigmoid_exact, _sigmoid_from_logits, sampled_bce_loss, False),
}
_HEAD_LOSSES[HeadType.RANKED] = _HEAD_LOSSES[HeadType.SOFTMAX]


class HeadLoss(nn.Module):
    """``loss(features, head, targets, train=...)``: the Task's loss without the logits matrix.

    Args:
        task: a multiclass (softmax) or multilabel Task.
        method: ``"full"`` (the plain softmax cross-entropy on ``head(features)``, for a head too large for the usual
            path's validation and predictions, which are ranked in chunks here), ``"chunked"`` (exact softmax
            cross-entropy over class chunks; multiclass only) or ``"sampled"``
            (softmax over the positive and shared sampled negatives with the log-Q correction; for multilabel
            every positive plus sampled negatives in the per-label BCE).
        proposal: what ``"sampled"`` draws negatives from.
        num_sampled: negatives per step (``"sampled"``).
        class_weight: per-class weights of the cross-entropy (``"chunked"`` only).
        label_smoothing: as for `torch.nn.functional.cross_entropy` (``"chunked"`` only).
        seed: seeds the negatives' generator; each rank of a distributed run adds its global rank (`for_rank`),
            so ranks draw different negatives and their gradients, averaged by DDP, see ``world_size * K`` of them.

    Example:
        >>> task = Task(kind="multiclass", classes=tuple(range(50)))
        >>> head = nn.Linear(8, 50)
        >>> loss = HeadLoss(task, method="chunked")
        >>> features, targets = torch.randn(4, 8), torch.tensor([0, 3, 49, 7])
        >>> full = nn.functional.cross_entropy(head(features), targets)
        >>> bool(torch.isclose(loss(features, head, targets, train=True), full, atol=1e-6))
        True
    """

    def __init__(
        self,
        task: Task,
        *,
        method: str,
        proposal: Proposal | None = None,
        num_sampled: int = DEFAULT_NUM_SAMPLED,
        class_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check(task, method=method, proposal=proposal, class_weight=class_weight, label_smoothing=label_smoothing)
        self.task = task
        self.method = method
        self.proposal = proposal
        self.num_sampled = num_sampled
        self.label_smoothing = label_smoothing
        self.seed = seed
        self.register_buffer("class_weight", class_weight, persistent=False)
        self.generator = torch.Generator().manual_seed(seed)
        self.losses = _HEAD_LOSSES[task.head]
        self.ranks_in_chunks = self.losses.ranks_in_chunks

    class_weight: torch.Tensor | None

    def from_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The exact loss from full logits (a multilabel head's validation loss)."""
        return self.losses.from_logits(logits, targets, self)

    def for_rank(self, rank: int) -> None:
        """Seed the negatives' generator for the process of global rank ``rank``."""
        self.generator.manual_seed(self.seed + rank)

    def forward(self, features: torch.Tensor, head: nn.Linear, targets: torch.Tensor, *, train: bool) -> torch.Tensor:
        """Mean loss of ``head(features)`` against ``targets`` (`Task.encode`); the sampled estimate only when
        ``train`` is True."""
        if train and self.method == "sampled":
            return self._sampled(features, head, targets)
        if train and self.method == "full":
            return self.losses.from_logits(head(features), targets, self)
        return self.losses.exact(features, head, targets, self)

    def _sampled(self, features: torch.Tensor, head: nn.Linear, targets: torch.Tensor) -> torch.Tensor:
        assert self.proposal is not None  # noqa: S101 - checked in __init__
        return self.losses.sampled(
            features,
            head.weight,
            head.bias,
            targets,
            proposal=self.proposal,
            num_sampled=self.num_sampled,
            generator=self.generator,
        )


def _check(
    task: Task,
    *,
    method: str,
    proposal: Proposal | None,
    class_weight: torch.Tensor | None,
    label_smoothing: float,
) -> None:
    if task.head not in _HEAD_LOSSES:
        raise ConfigError(
            f"--loss {method} is for softmax over many classes (or many labels); this {task.kind} Task's "
            f"{task.head} head has {task.head_width} logits, which the full loss trains at no cost. "
            "Use --loss full (or auto)."
        )
    if method not in ("full", "chunked", "sampled"):
        raise ConfigError(f"HeadLoss method={method!r}; expected 'full', 'chunked' or 'sampled'.")
    if method not in _HEAD_LOSSES[task.head].methods:
        raise ConfigError(
            "--loss chunked computes an exact softmax over class chunks; a multilabel Task has one sigmoid per "
            "label, whose loss needs no log-sum-exp. Use --loss full, or --loss sampled for sampled negatives."
        )
    if method == "sampled" and proposal is None:
        raise ConfigError("--loss sampled needs a proposal distribution to draw negatives from.")
    if method == "sampled" and (class_weight is not None or label_smoothing):
        raise ConfigError(
            "--loss sampled does not take class weights or label smoothing (the sampled softmax has no term for "
            "them); pass --balance none, or use --loss chunked."
        )
