"""`solve_linear`: fit a linear model (`labelwise.models.text.TextLinear`: text, a table's features, or both)
exactly, as logistic regression is fit.

A linear model of sparse TF-IDF vectors has one optimum per L2 strength, and a quasi-Newton method reaches it in
tens of full-batch passes; stochastic optimizers do not (Adam gives a rare n-gram a full-size step whenever it
occurs: on `fortunes` the same features reached 0.59-0.64 test accuracy with AdamW against 0.65 solved). So the
model is solved with full-batch L-BFGS along a path of L2 strengths, strongest first, each solve starting from
the last one's weights; the strength with the lowest validation loss is kept (as C is picked for logistic
regression; with sigmoid outputs, each logit keeps its own), and the path stops once two weaker strengths in a row
improved no logit. The loss is the run's own (label smoothing; class weights when asked for), so the solved model
is the trained one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.utils.data import Dataset

from labelwise.models.head import Network
from labelwise.models.text import TextLinear
from labelwise.task import Task
from labelwise.train.batches import predict_logits
from labelwise.train.config import TrainConfig
from labelwise.train.result import TrainResult

__all__ = ["L2_PATH", "solve_linear"]

# Mean-loss L2 strengths (logistic regression's 1 / (C * rows)): from 1e-2, far stronger than any text corpus of
# `benchmarks/text_baselines.py` chose, to 1e-7, weaker than C = 100 on 100,000 rows; half a decade apart.
L2_PATH = tuple(float(10.0 ** (-k / 2)) for k in range(4, 15))
# L-BFGS iterations per strength (warm starts need 10-80) and curvature pairs kept: against 200 and 20, 100 and 10
# solved fortunes (15 classes) in 31 s instead of 38 s and recipe-allergens (10 tags) in 17.5 s instead of 20 s, to
# the same validation loss (1.0361 and 0.0745).
_MAX_ITER = 100
_STOP_AFTER = 2
_HISTORY = 10


class _SparseProduct(torch.autograd.Function):
    """``X @ W`` for a fixed scipy CSR ``X`` (its transpose precomputed for the gradient)."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: sp.csr_matrix, transposed: sp.csr_matrix) -> torch.Tensor:
        ctx.transposed = transposed
        return torch.from_numpy(np.asarray(rows @ weight.detach().numpy(), dtype=np.float32))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return torch.from_numpy(np.asarray(ctx.transposed @ grad.numpy(), dtype=np.float32)), None, None


class _Design:
    """A dataset's rows as the linear model reads them: the text as a CSR matrix, the table features dense."""

    def __init__(self, dataset: Dataset[Any], vocabulary_size: int) -> None:
        inputs, self.targets = dataset[torch.arange(len(dataset))]  # type: ignore[arg-type]
        if not vocabulary_size:  # a table's features alone
            self.features, self.text, self.text_t = inputs, None, None
            return
        packed = inputs["text"] if isinstance(inputs, Mapping) else inputs
        self.features = inputs.get("features") if isinstance(inputs, Mapping) else None
        ids, weights = packed[:, 0].long(), packed[:, 1]
        used = ids < vocabulary_size
        starts = np.concatenate([[0], np.cumsum(used.sum(1).numpy())])
        self.text = sp.csr_matrix(
            (weights[used].numpy(), ids[used].numpy(), starts), shape=(len(packed), vocabulary_size)
        )
        self.text_t = self.text.T.tocsr()

    def scores(self, model: TextLinear, bias: torch.Tensor) -> torch.Tensor:
        scores = bias.expand(len(self.targets), -1)
        if model.bag is not None:  # the last row of its table is the padding term's
            scores = scores + _SparseProduct.apply(model.bag.weight[:-1], self.text, self.text_t)
        if model.features is not None and self.features is not None:
            scores = scores + model.features(self.features)
        return scores


def _penalty(model: TextLinear) -> torch.Tensor:
    parts = [part.weight.pow(2).sum() for part in (model.bag, model.features) if part is not None]
    return torch.stack(parts).sum()


def solve_linear(
    network: Network,
    task: Task,
    *,
    train: Dataset[Any],
    valid: Dataset[Any],
    loss: nn.Module,
    config: TrainConfig,
) -> TrainResult:
    """Solve ``network`` (a `Network` on a ``TextLinear`` backbone) for each L2 strength, keep the best.

    With sigmoid outputs (binary with one logit, multilabel) each logit is its own logistic regression, so each
    keeps the strength of its own lowest validation log-loss; a softmax keeps the one strength of the lowest
    validation loss. ``config.weight_decay``, when given, is the one strength solved; ``config.time_budget`` ends
    the path early. Returns a `TrainResult` whose history holds one row per strength (``epoch``, ``l2``,
    ``train_loss``, ``val_loss``); ``best_epoch`` is the row of the strength most logits kept.
    """
    torch.manual_seed(config.seed)
    model, head = cast(TextLinear, network.backbone), network.head
    with torch.no_grad():
        head.weight.copy_(torch.eye(head.weight.shape[0]))  # the backbone's scores are the logits
        head.bias.zero_()
    head.weight.requires_grad_(False)
    vocabulary = 0 if model.bag is None else model.bag.weight.shape[0] - 1
    fit, held = _Design(train, vocabulary), _Design(valid, vocabulary)
    params: list[torch.Tensor] = [p for p in network.parameters() if p.requires_grad]
    path = L2_PATH if config.weight_decay is None else (config.weight_decay,)
    kept = _Kept(per_logit=task.activation == "sigmoid", width=head.bias.shape[0])
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for step, strength in enumerate(path):
        train_loss = _solve(fit, model, head.bias, params, loss, strength)
        with torch.no_grad():
            scores = held.scores(model, head.bias)
        history.append(
            {"epoch": step, "l2": strength, "train_loss": train_loss, "val_loss": float(loss(scores, held.targets)),
             "lr": 1.0}
        )  # fmt: skip
        kept.offer(step, _held_out_losses(scores, held.targets, loss, per_logit=kept.per_logit), network)
        late = config.time_budget is not None and time.perf_counter() - start > config.time_budget
        if late or step - kept.last_improved >= _STOP_AFTER:
            break
    network.load_state_dict(kept.state(network))
    network.eval()
    return TrainResult(
        network=network,
        best_epoch=kept.most_common_step(),
        epochs_run=len(history),
        stopped_reason="early_stopping" if len(history) < len(path) else "max_epochs",
        history=history,
        valid_outputs=predict_logits(network, valid),
        best_val_loss=float(loss(held.scores(model, head.bias).detach(), held.targets)),
    )


def _held_out_losses(scores: torch.Tensor, targets: torch.Tensor, loss: nn.Module, *, per_logit: bool) -> torch.Tensor:
    """The validation log-loss of each logit (sigmoid outputs), or the run's loss as one value (softmax)."""
    if not per_logit:
        return loss(scores, targets).reshape(1)  # type: ignore[no-any-return]
    truth = targets.reshape(scores.shape).float()
    return nn.functional.binary_cross_entropy_with_logits(scores, truth, reduction="none").mean(dim=0)


class _Kept:
    """The best weights so far: per logit (sigmoid outputs: independent problems), or of the whole model."""

    def __init__(self, *, per_logit: bool, width: int) -> None:
        self.per_logit = per_logit
        self.losses = torch.full((width if per_logit else 1,), float("inf"))
        self.steps = torch.zeros_like(self.losses, dtype=torch.long)
        self.weights: dict[str, torch.Tensor] = {}
        self.last_improved = 0

    def offer(self, step: int, losses: torch.Tensor, network: nn.Module) -> None:
        better = losses < self.losses
        if not bool(better.any()):
            return
        self.last_improved = step
        self.losses = torch.where(better, losses, self.losses)
        self.steps[better] = step
        for name, value in network.state_dict().items():
            if name in self.weights and self.per_logit:
                self.weights[name] = torch.where(_logit_mask(name, value, better), value, self.weights[name])
            else:
                self.weights[name] = value.clone()

    def state(self, network: nn.Module) -> dict[str, torch.Tensor]:
        return self.weights or {k: v.clone() for k, v in network.state_dict().items()}

    def most_common_step(self) -> int:
        return int(torch.mode(self.steps).values)


def _logit_mask(name: str, value: torch.Tensor, better: torch.Tensor) -> torch.Tensor:
    """``better`` (one flag per logit) laid along the axis of ``value`` that indexes logits."""
    if name.endswith("bag.weight"):
        return better.reshape(1, -1)  # (terms, logits)
    if name.endswith("head.weight"):
        return torch.ones_like(value, dtype=torch.bool)  # the fixed identity
    return better.reshape(-1, *[1] * (value.ndim - 1))  # (logits, features) and the bias (logits,)


def _solve(
    design: _Design,
    model: TextLinear,
    bias: torch.Tensor,
    params: list[torch.Tensor],
    loss: nn.Module,
    strength: float,
) -> float:
    """Minimize the mean loss + ``strength / 2 * ||W||²`` from the current weights; the final mean loss."""
    optimizer = torch.optim.LBFGS(
        params, lr=1.0, max_iter=_MAX_ITER, history_size=_HISTORY, line_search_fn="strong_wolfe",
        tolerance_grad=1e-8, tolerance_change=1e-12,
    )  # fmt: skip

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value: torch.Tensor = loss(design.scores(model, bias), design.targets) + strength / 2 * _penalty(model)
        value.backward()  # type: ignore[no-untyped-call]
        return value

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        return float(loss(design.scores(model, bias), design.targets))
