"""The decision policy: everything that turns calibrated logits into what `predict` writes, in one object.

A `Policy` composes the fitted parts and never re-implements them: the `DecisionRule` (thresholds or argmax),
the optional `Abstention` (reject rule on an unknown score), and the optional set rule (split-conformal sets
or the top-k classes). It is fitted once on the validation split (`fit_policy`), saved inside the artifact, and
applied by `Classifier.predict_source`, so predict, evaluate and any later serving use exactly the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from labelwise.decide.abstain import Abstention, fit_abstention
from labelwise.decide.config import DecideConfig, check_top_k_for
from labelwise.decide.conformal import ConformalSets, fit_conformal
from labelwise.decide.ood import unknown_scores
from labelwise.decide.rule import DecisionRule
from labelwise.decide.thresholds import tune_thresholds
from labelwise.errors import ConfigError, check_fields
from labelwise.task import Task

__all__ = ["Decisions", "Policy", "fit_policy", "top_k_sets"]


@dataclass(frozen=True)
class Decisions:
    """What a `Policy` makes of a batch.

    Attributes:
        probs: ``(N, num_classes)`` calibrated probabilities; None for a run that ranks its classes in chunks
            (`labelwise.heads.ranked`), whose top classes come in a `labelwise.ranking.Ranked` instead.
        decisions: as `Task.decode` takes them: ``(N,)`` class indices with ``-1`` = abstained, or ``(N, C)`` bool.
        abstained: ``(N,)`` bool; always False for multilabel, whose "none" is an empty prediction.
        unknown_score: ``(N,)`` float64, the score the reject rule thresholds; None without one.
        sets: ``(N, num_classes)`` bool prediction sets (conformal or top-k); None when not asked for.
    """

    probs: torch.Tensor | None
    decisions: torch.Tensor
    abstained: torch.Tensor
    unknown_score: torch.Tensor | None
    sets: torch.Tensor | None


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A fitted decision policy; see the module docstring.

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> policy = Policy(rule=DecisionRule.default(task), top_k=2)
        >>> out = policy.decide(torch.tensor([[3.0, 2.0, -1.0]]), task)
        >>> out.decisions.tolist(), out.sets.tolist()
        ([0], [[True, True, False]])
    """

    rule: DecisionRule
    abstention: Abstention | None = None
    conformal: ConformalSets | None = None
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.top_k is not None and self.conformal is not None:
            raise ConfigError("a Policy gives top-k sets or conformal sets, not both; pass one of them.")

    def decide(self, logits: torch.Tensor, task: Task) -> Decisions:
        """Decisions for calibrated ``logits`` ``(N, head_width)`` of ``task``'s model."""
        probs = task.probabilities(logits)
        decisions = self.rule.decide(probs)
        abstained = torch.zeros(len(probs), dtype=torch.bool)
        scores = None
        if self.abstention is not None:
            scores = unknown_scores(logits, task, score=self.abstention.score)
            abstained = self.abstention.abstains(scores)
            decisions = torch.where(abstained, torch.full_like(decisions, -1), decisions)
        return Decisions(probs, decisions, abstained, scores, self._sets(probs))

    def _sets(self, probs: torch.Tensor) -> torch.Tensor | None:
        if self.conformal is not None:
            return self.conformal.sets(probs)
        if self.top_k is not None:
            return top_k_sets(probs, self.top_k)
        return None

    def with_top_k(self, k: int | None, task: Task) -> Policy:
        """This policy giving top-``k`` sets instead of its own set rule (``predict --top-k``)."""
        if k is None:
            return self
        return replace(self, conformal=None, top_k=check_top_k_for(k, task))

    def describe(self) -> list[str]:
        """One line per part, for the training summary."""
        lines = [self.rule.describe()]
        if self.abstention is not None:
            lines.append(self.abstention.describe())
        if self.conformal is not None:
            lines.append(self.conformal.describe())
        if self.top_k is not None:
            lines.append(f"top-{self.top_k} classes as the prediction set")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {
            "rule": self.rule.to_dict(),
            "abstention": None if self.abstention is None else self.abstention.to_dict(),
            "conformal": None if self.conformal is None else self.conformal.to_dict(),
            "top_k": self.top_k,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """Rebuild a Policy written by `to_dict`."""
        check_fields(data, ["rule", "abstention", "conformal", "top_k"], what="Policy")
        abstention, conformal = data.get("abstention"), data.get("conformal")
        return cls(
            rule=DecisionRule.from_dict(data["rule"]),
            abstention=None if abstention is None else Abstention.from_dict(abstention),
            conformal=None if conformal is None else ConformalSets.from_dict(conformal),
            top_k=data.get("top_k"),
        )


def fit_policy(logits: torch.Tensor, targets: torch.Tensor, task: Task, config: DecideConfig) -> Policy:
    """Fit the decision policy on calibrated validation ``logits`` and their ``targets`` (`Task.encode`).

    Thresholds are tuned first; the reject rule is then fitted on whether those decisions were right, so the
    coverage it promises is the coverage of the decisions `predict` makes.

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> logits = torch.eye(3).repeat(10, 1) * 4
        >>> policy = fit_policy(logits, torch.arange(3).repeat(10), task, DecideConfig(allow_none="max_prob"))
        >>> policy.abstention.score, policy.rule.kind
        ('max_prob', <TaskKind.MULTICLASS: 'multiclass'>)
    """
    config.check_for(task)
    probs = task.probabilities(logits)
    rule = tune_thresholds(probs, targets, task, metric=config.metric, shrink=True)
    abstention = None
    if config.none_score is not None:
        correct = rule.decide(probs) == targets.long()
        target, value = config.reject_target
        abstention = fit_abstention(
            unknown_scores(logits, task, score=config.none_score), correct, score=config.none_score, **{target: value}
        )
    conformal = None
    if config.conformal is not None:
        conformal = fit_conformal(probs, targets, task, level=config.conformal, method=config.conformal_method)
    return Policy(rule=rule, abstention=abstention, conformal=conformal, top_k=config.top_k)


def top_k_sets(probs: torch.Tensor, k: int) -> torch.Tensor:
    """``(N, C)`` bool marking each row's ``k`` most probable classes (ties broken by class order).

    Example:
        >>> top_k_sets(torch.tensor([[0.1, 0.6, 0.3]]), 2).tolist()
        [[False, True, True]]
    """
    if not 1 <= k <= probs.shape[1]:
        raise ConfigError(f"top-k {k} for {probs.shape[1]} classes; expected 1 <= k <= {probs.shape[1]}.")
    sets = torch.zeros(probs.shape, dtype=torch.bool, device=probs.device)
    # stable sort: equal probabilities keep class order, so the same probs always give the same set
    order = torch.sort(probs, dim=1, descending=True, stable=True).indices[:, :k]
    return sets.scatter(1, order, True)
