"""A run's stored decision policy applied in numpy, for `predict --backend onnx` without torch.

The torch policy (`labelwise.decide.policy.Policy`) is the reference: this module repeats only its *apply* side
(probabilities per head type, thresholds or argmax, the reject rule's unknown scores, top-k sets and columns), in
the same precision (float32 probabilities, float64 thresholds and scores), and `tests/test_export.py` checks that
both give the same table. Conformal sets are not repeated here: a run that has them is predicted through the torch
policy (`load_onnx` decides), so a change to them has one place to go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from labelwise._kinds import HeadType, TaskKind
from labelwise.decide.config import check_top_k_for
from labelwise.errors import ArtifactError, DataError, check_fields
from labelwise.task import Task

__all__ = ["NumpyDecisions", "NumpyPolicy"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) overflows to inf for very negative z: the sigmoid is then 0
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def _softplus(z: np.ndarray) -> np.ndarray:
    # torch's softplus returns z itself above 20 (its default threshold); matched, so scores agree to the bit there.
    with np.errstate(over="ignore"):
        return np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20))))


def _one_logit_probs(z: np.ndarray) -> np.ndarray:
    positive = _sigmoid(z[:, 0])
    return np.stack([1 - positive, positive], axis=1)


# head type -> logits (N, head_width) float32 -> probabilities (N, C) float32, as `labelwise._heads.HEADS`.
_PROBABILITIES: dict[HeadType, Callable[[np.ndarray], np.ndarray]] = {
    HeadType.ONE_LOGIT: _one_logit_probs,
    HeadType.TWO_LOGITS: _softmax,
    HeadType.SOFTMAX: _softmax,
    HeadType.ONE_VS_REST: lambda z: _softmax(-_softplus(-z)),  # softmax(logsigmoid(z))
    HeadType.MULTILABEL: _sigmoid,
}


def _softmax_max_prob(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    others = np.exp(shifted)
    others[np.arange(len(z)), shifted.argmax(axis=1)] = 0.0
    rest = others.sum(axis=1)
    return np.asarray(rest / (1.0 + rest))


def _softmax_energy(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1)
    return np.asarray(-(top + np.log(np.exp(z - top[:, None]).sum(axis=1))))


_Score = Callable[[np.ndarray], np.ndarray]
_SOFTMAX_SCORES: dict[str, _Score] = {"max_prob": _softmax_max_prob, "energy": _softmax_energy}
# head type -> score -> float64 logits -> (N,) float64, as `labelwise.decide.ood`.
_SCORES: dict[HeadType, dict[str, _Score]] = {
    HeadType.ONE_LOGIT: {"max_prob": lambda z: _sigmoid(-np.abs(z[:, 0]))},
    HeadType.TWO_LOGITS: _SOFTMAX_SCORES,
    HeadType.SOFTMAX: _SOFTMAX_SCORES,
    HeadType.ONE_VS_REST: {"max_prob": lambda z: _sigmoid(-z.max(axis=1)), "energy": lambda z: -_softplus(z).sum(1)},
}


@dataclass(frozen=True)
class NumpyDecisions:
    """`labelwise.decide.policy.Decisions` as numpy arrays (the same fields, shapes and dtypes)."""

    probs: np.ndarray
    decisions: np.ndarray
    abstained: np.ndarray
    unknown_score: np.ndarray | None
    sets: np.ndarray | None


@dataclass(frozen=True, kw_only=True)
class NumpyPolicy:
    """The thresholds (or argmax), reject rule and top-k sets of a stored policy without conformal sets."""

    head: HeadType
    kind: TaskKind
    thresholds: np.ndarray | None  # binary: (1,), multilabel: (C,) float64; None: argmax
    score: str | None = None
    score_threshold: float | None = None
    top_k: int | None = None
    conformal: None = None  # a run with conformal sets gets the torch policy (module docstring)

    @classmethod
    def from_dict(cls, data: dict[str, Any], task: Task) -> NumpyPolicy | None:
        """The policy stored by `Policy.to_dict` (or a bare rule, as older runs store it); None when it holds
        conformal sets or the task ranks its classes in chunks, which the torch policy serves."""
        if "rule" not in data:
            data = {"rule": data, "abstention": None, "conformal": None, "top_k": None}
        check_fields(data, ["rule", "abstention", "conformal", "top_k"], what="Policy")
        if data.get("conformal") is not None or task.head not in _PROBABILITIES:
            return None
        rule, abstention = data["rule"], data.get("abstention")
        values = rule.get("threshold") if task.kind is TaskKind.BINARY else rule.get("thresholds")
        if task.kind is not TaskKind.MULTICLASS and values is None:
            raise ArtifactError(f"the stored {task.kind} decision rule holds no threshold; export the run again.")
        return cls(
            head=task.head,
            kind=task.kind,
            thresholds=None if task.kind is TaskKind.MULTICLASS else np.atleast_1d(np.asarray(values, np.float64)),
            score=None if abstention is None else str(abstention["score"]),
            score_threshold=None if abstention is None else float(abstention["threshold"]),
            top_k=data.get("top_k"),
        )

    def with_top_k(self, k: int | None, task: Task) -> NumpyPolicy:
        """This policy giving top-``k`` sets (``predict --top-k``), as `Policy.with_top_k`."""
        return self if k is None else replace(self, top_k=check_top_k_for(k, task))

    def decide(self, logits: np.ndarray) -> NumpyDecisions:
        """Decisions for calibrated ``logits`` ``(N, head_width)`` float32, as `Policy.decide`."""
        probs = _PROBABILITIES[self.head](logits).astype(np.float32)
        wide = probs.astype(np.float64)  # thresholds are float64, as `DecisionRule.decide` compares them
        if self.thresholds is None:
            decisions = probs.argmax(axis=1).astype(np.int64)
        elif self.kind is TaskKind.BINARY:
            decisions = (wide[:, 1] >= self.thresholds[0]).astype(np.int64)
        else:
            decisions = wide >= self.thresholds
        abstained, scores = np.zeros(len(probs), dtype=bool), None
        if self.score is not None:
            scores = self._unknown_scores(logits)
            abstained = ~(scores <= self.score_threshold)
            decisions = np.where(abstained, -1, decisions)
        sets = None if self.top_k is None else top_k_mask(probs, self.top_k)
        return NumpyDecisions(probs, decisions, abstained, scores, sets)

    def _unknown_scores(self, logits: np.ndarray) -> np.ndarray:
        if not np.isfinite(logits).all():
            raise DataError("the model gave non-finite logits; expected finite numbers. Check the input rows.")
        return _SCORES[self.head][str(self.score)](logits.astype(np.float64))


def top_order(probs: np.ndarray, k: int) -> np.ndarray:
    """``(N, k)`` indices of each row's ``k`` most probable classes, ties in class order (torch's stable sort)."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def top_k_mask(probs: np.ndarray, k: int) -> np.ndarray:
    """``(N, C)`` bool marking each row's ``k`` most probable classes, as `labelwise.decide.policy.top_k_sets`."""
    mask = np.zeros(probs.shape, dtype=bool)
    np.put_along_axis(mask, top_order(probs, k), True, axis=1)
    return mask
