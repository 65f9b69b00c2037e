"""The dense head: ``(N, head_width)`` logits, calibrated and decided on the full ``(N, C)`` probabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from labelwise.calibrate import fit_temperature
from labelwise.decide.config import DecideConfig
from labelwise.decide.policy import Decisions, Policy, fit_policy
from labelwise.evaluation import evaluation_metrics
from labelwise.heads.base import Fitted, Head, HeadOutputs, Truth
from labelwise.ranking import Ranked, dense_ranking_metrics, rank
from labelwise.task import Task

if TYPE_CHECKING:
    from labelwise.inputs import NetworkInput

__all__ = ["DenseHead", "decide_calibrated"]


def decide_calibrated(
    logits: torch.Tensor, task: Task, policy: Policy, *, top_k: int | None
) -> tuple[Decisions, Ranked | None]:
    """A dense head's decisions from calibrated ``logits`` ``(N, head_width)``, and the ``top_k`` classes when asked.

    `DenseHead.predict` calls it after its calibration; an exported ONNX model (`labelwise.export`), whose graph
    holds the calibration, calls it on the graph's logits, so both decide alike.
    """
    out = policy.decide(logits, task)
    assert out.probs is not None  # noqa: S101 - a dense policy always gives probabilities
    return out, None if top_k is None else rank(out.probs, top_k)


class DenseHead(Head):
    """Every class's logit for every row: temperature scaling, tuned thresholds, abstention and sets.

    Example:
        >>> from torch import nn
        >>> from labelwise.task import Task
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> head = DenseHead(task, nn.Linear(4, 3))
        >>> head.raw(torch.zeros(2, 4)).shape
        torch.Size([2, 3])
    """

    @property
    def raw_width(self) -> int:
        return self.task.head_width

    def raw(self, batch: NetworkInput) -> torch.Tensor:
        return self.network(batch).float()  # type: ignore[no-any-return]

    def check_decide(self, decide: DecideConfig) -> None:
        """A dense head gives every decision option `DecideConfig.check_for` allows."""

    def require_every_probability(self, what: str) -> None:
        """A dense head holds every class's probability."""

    def fit(self, raw: torch.Tensor, targets: torch.Tensor, decide: DecideConfig, *, seed: int) -> Fitted:
        """Temperature scaling (`fit_temperature`), then the policy on the calibrated logits (`fit_policy`)."""
        calibration = fit_temperature(raw, targets, self.task)
        return Fitted(calibration, fit_policy(calibration.apply(raw), targets, self.task, decide))

    def predict(self, raw: torch.Tensor, fitted: Fitted, *, top_k: int | None = None) -> HeadOutputs:
        logits = fitted.calibration.apply(raw)
        out, ranked = decide_calibrated(logits, self.task, fitted.policy, top_k=top_k)
        return HeadOutputs(raw, out, ranked=ranked, logits=logits, uncalibrated=self.task.probabilities(raw))

    def metrics(
        self, outputs: HeadOutputs, truth: Truth, fitted: Fitted, *, train_counts: np.ndarray | None
    ) -> dict[str, float]:
        assert outputs.uncalibrated is not None and outputs.out.probs is not None  # noqa: S101 - set by predict
        known = torch.from_numpy(truth.known)
        metrics = evaluation_metrics(
            outputs.out, outputs.uncalibrated, targets=truth.targets, known=known, task=self.task, policy=fitted.policy
        )
        ranking = dense_ranking_metrics(
            outputs.out.probs[known], truth.targets, self.task, train_counts=train_counts, top_k=fitted.policy.top_k
        )
        return metrics | ranking
