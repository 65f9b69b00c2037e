"""The head interface: what every stage after the backbone asks of a trained classifier's last layer.

A head turns a batch of encoded inputs into its *raw outputs* (`Head.raw`), fits a calibration and a decision
policy on the validation rows' raw outputs (`Head.fit`), turns raw outputs into decisions (`Head.predict`) and
scores them (`Head.metrics`). Training, ``predict``, ``evaluate``, ``serve``, ``export`` and the report go through
these four operations; none of them asks which head it holds. Two implementations:

- `labelwise.heads.dense.DenseHead`: raw outputs are the ``(N, head_width)`` logits; calibration, thresholds,
  abstention and sets work on the full ``(N, C)`` probabilities.
- `labelwise.heads.ranked.RankedHead`: a softmax over so many classes that ``(N, C)`` is never held; raw outputs
  are the backbone's ``(N, F)`` features, and every step works in class chunks from them and the head's weights.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from labelwise.calibrate import Calibration
from labelwise.decide.config import DecideConfig
from labelwise.decide.policy import Decisions, Policy
from labelwise.ranking import Ranked
from labelwise.task import Task

if TYPE_CHECKING:
    from labelwise.inputs import NetworkInput

__all__ = ["Fitted", "Head", "HeadOutputs", "Truth"]


@dataclass(frozen=True)
class HeadOutputs:
    """What `Head.predict` gives for N rows.

    Attributes:
        raw: the rows' raw outputs (`Head.raw`): logits ``(N, head_width)``, or features ``(N, F)``.
        out: the policy's `Decisions` (``probs`` None when the head never holds ``(N, C)``).
        ranked: the top classes and their calibrated probabilities, when asked for (``top_k``) or when the head
            ranks anyway; else None.
        logits: ``(N, head_width)`` calibrated logits, when the head computes them; else None.
        uncalibrated: ``(N, num_classes)`` probabilities before calibration, when the head holds them; else None.
        logsumexp: ``(N,)`` calibrated log-normaliser of a head that ranks in chunks; else None.
    """

    raw: torch.Tensor
    out: Decisions
    ranked: Ranked | None = None
    logits: torch.Tensor | None = None
    uncalibrated: torch.Tensor | None = None
    logsumexp: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class Truth:
    """The labels of predicted rows, as the model scores them.

    ``known`` ``(N,)`` bool marks the items of a class the model knows: all of them, unless the model may abstain,
    which takes other classes as "none of these". ``targets`` is `Task.encode` of the known items' labels.
    """

    known: np.ndarray
    targets: torch.Tensor


@dataclass(frozen=True)
class Fitted:
    """What `Head.fit` learns on the validation rows: the calibration and the decision policy."""

    calibration: Calibration
    policy: Policy


class Head(abc.ABC):
    """The last layer of a trained network, and everything that reads its outputs; see the module docstring.

    Args:
        task: the run's Task.
        network: the trained network (`labelwise.models.head.Network`: a backbone and an ``nn.Linear`` head).
    """

    def __init__(self, task: Task, network: nn.Module) -> None:
        self.task = task
        self.network = network

    @property
    @abc.abstractmethod
    def raw_width(self) -> int:
        """Width of `raw`'s output (``head_width`` logits or the backbone's features)."""

    @abc.abstractmethod
    def raw(self, batch: NetworkInput) -> torch.Tensor:
        """Raw outputs ``(N, raw_width)`` float of one batch of network inputs (no gradients needed)."""

    @abc.abstractmethod
    def check_decide(self, decide: DecideConfig) -> None:
        """Raise `ConfigError` for decision options this head cannot give, before any training."""

    @abc.abstractmethod
    def require_every_probability(self, what: str) -> None:
        """Raise `ConfigError` naming ``what`` when this head never holds every class's probability."""

    @abc.abstractmethod
    def fit(self, raw: torch.Tensor, targets: torch.Tensor, decide: DecideConfig, *, seed: int) -> Fitted:
        """Fit the calibration and the decision policy on the validation rows' ``raw`` outputs and ``targets``."""

    @abc.abstractmethod
    def predict(self, raw: torch.Tensor, fitted: Fitted, *, top_k: int | None = None) -> HeadOutputs:
        """Decisions for raw outputs; ``top_k``: also rank each row's ``top_k`` most probable classes."""

    @abc.abstractmethod
    def metrics(
        self, outputs: HeadOutputs, truth: Truth, fitted: Fitted, *, train_counts: np.ndarray | None
    ) -> dict[str, float]:
        """The metrics of `labelwise.Classifier.evaluate` for ``outputs`` against their ``truth``."""
