"""What `evaluate` reports: `compute_metrics` plus what the decision policy adds.

The keys, beyond `labelwise.metrics.compute_metrics`:

- ``ece_uncalibrated``, ``brier_uncalibrated``: the same calibration metrics on the probabilities before
  temperature scaling, so the effect of calibration is visible on data it was not fitted on.
- With prediction sets (``--conformal`` or ``--top-k``): ``set_coverage`` (the fraction of items whose true
  label, multilabel: all true labels, is in the set), ``mean_set_size``, ``empty_set_rate``.
- With a reject rule (``--allow-none``), on every item, labels of classes the model never saw included:
  ``coverage`` (fraction answered), ``selective_accuracy`` (fraction of answered items that are of a known
  class and classified right), ``selective_accuracy/coverage=C`` rows of the risk–coverage table (accepting
  the items with the lowest unknown score), ``aurc``; and when some labels are unknown classes:
  ``unknown_items``, ``unknown_rejected`` (fraction of them abstained on), ``unknown_auroc`` and
  ``unknown_fpr95`` of the unknown score as a detector. The classification metrics (accuracy, F1, ...)
  are then those of the model's decisions before abstaining, on the items of known classes: how well it
  tells the known classes apart, separately from how well it knows when to abstain.
"""

from __future__ import annotations

import torch

from labelwise.decide.conformal import set_metrics
from labelwise.decide.ood import aurc, ood_metrics, risk_coverage
from labelwise.decide.policy import Decisions, Policy
from labelwise.errors import ConfigError
from labelwise.task import Task

__all__ = ["evaluation_metrics", "selective_metrics"]


def evaluation_metrics(
    out: Decisions,
    raw_probs: torch.Tensor,
    *,
    targets: torch.Tensor,
    known: torch.Tensor,
    task: Task,
    policy: Policy,
) -> dict[str, float]:
    """Metrics of a policy's decisions ``out`` on labelled items.

    Args:
        out: `Policy.decide` on every item.
        raw_probs: ``(N, num_classes)`` probabilities before calibration, for the ``*_uncalibrated`` keys.
        targets: `Task.encode` of the labels of the known-class items (``known``), in order.
        known: ``(N,)`` bool, the items whose label is one of the Task's classes.
        task: the Task.
        policy: the policy that made ``out``.
    """
    if out.probs is None:
        raise ConfigError(
            "these decisions hold no (N, C) probabilities (a run that ranks its classes in chunks); score them with "
            "`Classifier.metrics`, which uses the ranked outputs."
        )
    probs = out.probs[known]
    decisions = out.decisions[known]
    metrics: dict[str, float] = {}
    if known.any():  # data of unknown classes only has nothing to classify, only something to reject
        from labelwise.metrics import compute_metrics  # deferred: scikit-learn costs 0.7 s that predicting skips

        if policy.abstention is not None:
            decisions = policy.rule.decide(probs)  # how well it tells known classes apart, before abstaining
        metrics = compute_metrics(probs, targets, task, decisions=decisions)
        before = compute_metrics(raw_probs[known], targets, task, decisions=decisions)
        metrics |= {f"{name}_uncalibrated": before[name] for name in ("ece", "brier") if name in before}
        if out.sets is not None:
            metrics |= set_metrics(out.sets[known], targets, task)
    if policy.abstention is not None and out.unknown_score is not None:
        metrics |= selective_metrics(out, decisions, targets=targets, known=known)
    return metrics


def selective_metrics(
    out: Decisions, decisions: torch.Tensor, *, targets: torch.Tensor, known: torch.Tensor
) -> dict[str, float]:
    """Coverage, selective accuracy, the risk-coverage rows and AURC of an abstaining policy; with items of unknown
    classes (``~known``) also how many it rejected and the detector metrics. ``decisions`` are the known items'
    decisions before abstaining."""
    assert out.unknown_score is not None  # noqa: S101 - checked by the caller
    correct = torch.zeros(len(known), dtype=torch.bool)
    correct[known] = decisions == targets.long()
    answered = ~out.abstained
    metrics = {"coverage": answered.double().mean().item()}
    if answered.any():
        metrics["selective_accuracy"] = correct[answered].double().mean().item()
    for row in risk_coverage(out.unknown_score, correct):
        metrics[f"selective_accuracy/coverage={row['target_coverage']:g}"] = row["selective_accuracy"]
    metrics["aurc"] = aurc(out.unknown_score, correct)
    unknown = ~known
    if unknown.any():
        metrics["unknown_items"] = float(unknown.sum().item())
        metrics["unknown_rejected"] = out.abstained[unknown].double().mean().item()
        metrics |= ood_metrics(out.unknown_score, unknown)
    return metrics
