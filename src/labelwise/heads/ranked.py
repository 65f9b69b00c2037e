"""The ranked head: a large softmax head's calibration, decisions and metrics from features, in class chunks.

A run trained with ``--loss chunked`` or ``--loss sampled`` on single-label data (or with more than
`RANKED_ABOVE` classes) has too many classes for the
``(N, C)`` logits or probabilities the usual path holds (10^5 classes x 10^4 validation rows is 4 GB). Every step
after training then works from the backbone's features and the head's weights (`labelwise.huge`), exactly:

- calibration: one temperature, the minimum of the exact validation NLL over a grid of temperatures (each needs
  the log-sum-exp over all classes; one chunked pass gives all of them, on at most `CALIBRATION_ROWS` rows);
- decisions: the most probable class (argmax; a softmax head has no thresholds to tune), or none when the
  reject rule (``max_prob`` or ``energy``, both read off the top-k and the log-sum-exp) abstains;
- outputs: the k most probable classes and their calibrated probabilities (`labelwise.ranking.Ranked`);
- metrics: accuracy, NLL and the ranking metrics (P@k, recall@k, macro-recall over head / torso / tail).

Conformal sets need every class's probability and are refused for these runs, in one line.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from labelwise.calibrate import Calibration
from labelwise.decide.abstain import fit_abstention
from labelwise.decide.config import DecideConfig
from labelwise.decide.policy import Decisions, Policy
from labelwise.decide.rule import DecisionRule
from labelwise.errors import ConfigError
from labelwise.evaluation import selective_metrics
from labelwise.heads.base import Fitted, Head, HeadOutputs, Truth
from labelwise.huge import DEFAULT_CHUNK, TopK, chunked_top_k
from labelwise.models.head import backbone_and_head
from labelwise.ranking import AUTO_TOP_K, Ranked, ranking_metrics
from labelwise.task import HeadType, Task

if TYPE_CHECKING:
    from labelwise.inputs import NetworkInput

__all__ = [
    "CALIBRATION_ROWS",
    "RANKED_ABOVE",
    "RankedHead",
    "calibrated_true_logits",
    "check_ranked_decide",
    "fit_ranked_calibration",
    "fit_ranked_policy",
    "ranked_decisions",
    "ranked_metrics",
    "uses_ranked_path",
]

# Above this many classes even a full-softmax run ranks in chunks: 10^4 validation rows x 20,000 classes is 800 MB
# of float32 logits, and the usual path holds several copies of them (logits, calibrated, probabilities).
RANKED_ABOVE = 20_000
# A temperature is one number: 2048 rows pin it to a few percent; each Newton step is a pass over all classes.
CALIBRATION_ROWS = 2048
# The NLL is convex in 1/T; Newton's method from T = 1 settles in 4-6 steps on the demos.
_NEWTON_STEPS = 12
_T_RANGE = (0.05, 20.0)
_KS = (1, 5)


def uses_ranked_path(task: Task, loss_name: str) -> bool:
    """True when a run of ``task`` trained with head loss ``loss_name`` predicts through the ranked path: a softmax
    head trained with ``chunked`` or ``sampled``, or one of more than `RANKED_ABOVE` classes whatever its loss."""
    softmax = task.head in (HeadType.SOFTMAX, HeadType.RANKED)
    return softmax and (loss_name in ("chunked", "sampled") or task.num_classes > RANKED_ABOVE)


def check_ranked_decide(decide: DecideConfig) -> None:
    """Refuse the decision options the ranked path cannot give, before training.

    Raises:
        ConfigError: conformal sets or top-k sets were asked for.
    """
    if decide.conformal is not None:
        raise ConfigError(
            "--conformal needs every class's probability for each item, which a head trained with --loss chunked or "
            "sampled does not compute (it ranks the classes in chunks). Drop --conformal, or use --loss full."
        )
    if decide.top_k is not None:
        raise ConfigError(
            "--top-k at training asks for top-k prediction sets; a head trained with --loss chunked or sampled "
            "writes the ranked classes top1..topK anyway. Drop --top-k here and pass `predict --top-k K`."
        )


def _head_tensors(head: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    return head.weight.detach(), None if head.bias is None else head.bias.detach()


def _true_logits(features: torch.Tensor, head: nn.Linear, targets: torch.Tensor) -> torch.Tensor:
    weight, bias = _head_tensors(head)
    logits = (features * weight[targets]).sum(dim=1)
    return logits if bias is None else logits + bias[targets]


def fit_ranked_calibration(
    features: torch.Tensor, head: nn.Linear, targets: torch.Tensor, *, seed: int = 0
) -> Calibration:
    """The temperature with the lowest exact NLL on (at most `CALIBRATION_ROWS` of) the validation rows.

    With ``beta = 1 / T`` the NLL ``mean(logsumexp(beta * z) - beta * z_y)`` is convex, its derivative is
    ``mean(E_p[z] - z_y)`` and its second derivative ``mean(Var_p[z])``: one chunked pass over the classes gives
    all three, so Newton's method needs no (N, C) logits and a handful of passes. Data the model separates
    perfectly would drive T to 0 (see `labelwise.calibrate.Calibration`): T then stays 1.

    Args:
        features: ``(N, F)`` backbone features of the validation rows.
        head: the trained ``nn.Linear(F, C)`` head.
        targets: ``(N,)`` long class indices.
        seed: which rows, when there are more than `CALIBRATION_ROWS`.
    """
    if len(features) > CALIBRATION_ROWS:
        rows = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:CALIBRATION_ROWS]
        features, targets = features[rows], targets[rows]
    true = _true_logits(features, head, targets).double()
    low, high = 1.0 / _T_RANGE[1], 1.0 / _T_RANGE[0]
    beta, nll_before = 1.0, math.nan
    for _ in range(_NEWTON_STEPS):
        lse, mean, var = _softmax_moments(features, head, beta)
        nll = float((lse - beta * true).mean())
        nll_before = nll if math.isnan(nll_before) else nll_before
        grad, curvature = float((mean - true).mean()), float(var.mean())
        step = grad / curvature if curvature > 0 else -math.inf
        # Damped: at most a factor e per step, so a flat start cannot throw beta out of range.
        new = min(max(beta * math.exp(max(min(-step / beta, 1.0), -1.0)), low), high)
        if abs(new - beta) <= 1e-4 * beta:
            break
        beta = new
    if beta >= high:  # separable: no finite temperature
        return Calibration(nll_before=nll_before, nll_after=nll_before, num_samples=len(features), num_separable=1)
    lse, _, _ = _softmax_moments(features, head, beta)
    return Calibration(
        temperatures=(1.0 / beta,),
        nll_before=nll_before,
        nll_after=float((lse - beta * true).mean()),
        num_samples=len(features),
    )


def _softmax_moments(
    features: torch.Tensor, head: nn.Linear, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: logsumexp of ``beta * z``, and the mean and variance of ``z`` under ``softmax(beta * z)``.

    An online pass over class chunks: the running sums of ``w``, ``w z``, ``w z^2`` (``w = exp(beta z - max)``) are
    rescaled whenever the running max grows, as in the online log-sum-exp of `labelwise.huge`.
    """
    weight, bias = _head_tensors(head)
    rows = len(features)
    top = torch.full((rows,), -math.inf, dtype=torch.float64)
    sums = torch.zeros(3, rows, dtype=torch.float64)
    with torch.inference_mode():
        for start in range(0, weight.shape[0], DEFAULT_CHUNK):
            z = features @ weight[start : start + DEFAULT_CHUNK].T
            if bias is not None:
                z = z + bias[start : start + DEFAULT_CHUNK]
            z = z.double()
            new_top = torch.maximum(top, beta * z.max(dim=1).values)
            w = torch.exp(beta * z - new_top[:, None])
            sums = sums * torch.exp(top - new_top) + torch.stack([w.sum(1), (w * z).sum(1), (w * z * z).sum(1)])
            top = new_top
    mean = sums[1] / sums[0]
    return top + torch.log(sums[0]), mean, (sums[2] / sums[0] - mean**2).clamp(min=0.0)


def _top(features: torch.Tensor, head: nn.Linear, calibration: Calibration, *, k: int) -> TopK:
    weight, bias = _head_tensors(head)
    with torch.inference_mode():
        return chunked_top_k(
            features, weight, bias, k=k, temperature=calibration.temperatures[0], chunk_size=DEFAULT_CHUNK
        )


def _unknown_scores(top: TopK, score: str) -> torch.Tensor:
    if score == "max_prob":
        return -torch.expm1(top.values[:, 0] - top.logsumexp).double()  # 1 - p_top1, exact near certainty
    if score == "energy":
        return -top.logsumexp.double()
    raise ConfigError(
        f"--allow-none {score} is not available for a head trained with --loss chunked or sampled; "
        "use --allow-none max_prob or energy."
    )


def fit_ranked_policy(
    features: torch.Tensor,
    head: nn.Linear,
    calibration: Calibration,
    targets: torch.Tensor,
    task: Task,
    decide: DecideConfig,
) -> Policy:
    """Argmax, and the reject rule of ``decide`` fitted on the validation rows' top class and scores."""
    check_ranked_decide(decide)
    rule = DecisionRule.default(task)
    if decide.none_score is None:
        return Policy(rule=rule)
    top = _top(features, head, calibration, k=1)
    target, value = decide.reject_target
    abstention = fit_abstention(
        _unknown_scores(top, decide.none_score),
        top.indices[:, 0] == targets.long(),
        score=decide.none_score,
        **{target: value},
    )
    return Policy(rule=rule, abstention=abstention)


def ranked_decisions(
    features: torch.Tensor, head: nn.Linear, calibration: Calibration, policy: Policy, *, k: int = AUTO_TOP_K
) -> tuple[Decisions, Ranked, torch.Tensor]:
    """Decisions, the ``k`` top classes and the calibrated log-sum-exp of every row, in class chunks.

    The `Decisions` hold no ``(N, C)`` probabilities (``probs`` is None, ``sets`` None); the `Ranked` has them.
    """
    top = _top(features, head, calibration, k=k)
    decisions = top.indices[:, 0].clone()
    abstained = torch.zeros(len(decisions), dtype=torch.bool)
    scores = None
    if policy.abstention is not None:
        scores = _unknown_scores(top, policy.abstention.score)
        abstained = policy.abstention.abstains(scores)
        decisions = torch.where(abstained, torch.full_like(decisions, -1), decisions)
    out = Decisions(None, decisions, abstained, scores, None)
    return out, Ranked(classes=top.indices, probs=top.probs()), top.logsumexp


def ranked_metrics(
    ranked: Ranked,
    logsumexp: torch.Tensor,
    true_logits: torch.Tensor,
    targets: torch.Tensor,
    task: Task,
    *,
    train_counts: np.ndarray | None,
) -> dict[str, Any]:
    """Accuracy, exact NLL and the ranking metrics of items of known classes.

    Args:
        ranked: the top classes (``k >= 5`` for ``precision@5``; fewer cut-offs otherwise).
        logsumexp: ``(N,)`` calibrated log-sum-exp over all classes.
        true_logits: ``(N,)`` calibrated logit of each item's true class.
        targets: ``(N,)`` class indices.
        task: the Task.
        train_counts: training rows per class, for the head / torso / tail recalls; None leaves them out.
    """
    ks = tuple(k for k in _KS if k <= ranked.k)
    metrics = ranking_metrics(ranked, targets, task, train_counts=train_counts, ks=ks)
    metrics["accuracy"] = metrics["precision@1"]
    metrics["log_loss"] = float((logsumexp.double() - true_logits.double()).mean())
    return metrics


def calibrated_true_logits(
    features: torch.Tensor, head: nn.Linear, calibration: Calibration, targets: torch.Tensor
) -> torch.Tensor:
    """``(N,)`` the calibrated logit of each row's true class."""
    with torch.inference_mode():
        return _true_logits(features, head, targets) / calibration.temperatures[0]


class RankedHead(Head):
    """A softmax over very many classes, never held as ``(N, C)``: raw outputs are the backbone's features.

    Calibration is one temperature (`fit_ranked_calibration`), decisions the argmax or an abstention read off the
    top classes (`fit_ranked_policy`), outputs the top-k classes (`ranked_decisions`), metrics the accuracy, the
    exact NLL and the ranking metrics (`ranked_metrics`).
    """

    def __init__(self, task: Task, network: nn.Module) -> None:
        super().__init__(task, network)
        self.backbone, self.linear = backbone_and_head(network)

    @property
    def raw_width(self) -> int:
        return self.linear.in_features

    def raw(self, batch: NetworkInput) -> torch.Tensor:
        return self.backbone(batch).float()  # type: ignore[no-any-return]

    def check_decide(self, decide: DecideConfig) -> None:
        check_ranked_decide(decide)

    def require_every_probability(self, what: str) -> None:
        raise ConfigError(
            f"{what} needs every class's probability for each item, which a run that ranks its "
            f"{self.task.num_classes} classes in chunks (trained with --loss chunked or sampled, or one of very many "
            "classes) does not compute; use `evaluate --json` for its P@k and head / torso / tail recalls."
        )

    def fit(self, raw: torch.Tensor, targets: torch.Tensor, decide: DecideConfig, *, seed: int) -> Fitted:
        calibration = fit_ranked_calibration(raw, self.linear, targets, seed=seed)
        return Fitted(calibration, fit_ranked_policy(raw, self.linear, calibration, targets, self.task, decide))

    def predict(self, raw: torch.Tensor, fitted: Fitted, *, top_k: int | None = None) -> HeadOutputs:
        """Decisions and the top ``top_k`` classes (`labelwise.ranking.AUTO_TOP_K` when None) of every row."""
        k = min(top_k or AUTO_TOP_K, self.task.num_classes)
        out, ranked, lse = ranked_decisions(raw, self.linear, fitted.calibration, fitted.policy, k=k)
        return HeadOutputs(raw, out, ranked=ranked, logsumexp=lse)

    def metrics(
        self, outputs: HeadOutputs, truth: Truth, fitted: Fitted, *, train_counts: np.ndarray | None
    ) -> dict[str, float]:
        assert outputs.ranked is not None and outputs.logsumexp is not None  # noqa: S101 - set by predict
        known = torch.from_numpy(truth.known)
        ranked = Ranked(classes=outputs.ranked.classes[known], probs=outputs.ranked.probs[known])
        true = calibrated_true_logits(outputs.raw[known], self.linear, fitted.calibration, truth.targets)
        metrics = ranked_metrics(
            ranked, outputs.logsumexp[known], true, truth.targets, self.task, train_counts=train_counts
        )
        if fitted.policy.abstention is not None and outputs.out.unknown_score is not None:
            metrics |= selective_metrics(outputs.out, ranked.classes[:, 0], targets=truth.targets, known=known)
        return metrics
