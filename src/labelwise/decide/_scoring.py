"""Scoring every candidate threshold at once: the counts, the metric, the best threshold per column.

Candidate thresholds are the midpoints between consecutive distinct probabilities (with 0 and 1 as outer sentinels),
plus 0.5; all are scored from one sort and cumulative sums of the targets (`labelwise.decide.thresholds` describes
the rules the tuners build on these).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from labelwise.decide.objectives import ThresholdMetric

__all__ = ["Best", "best_thresholds", "rank", "reported", "score"]

# Columns of probabilities scored per chunk: bounds the (N + 2, chunk) float64 count matrices to ~32 MB each.
_CHUNK_ELEMENTS = 4_000_000
# Scores within this of the best are ties (balanced accuracy adds two divisions, so equal ratios may differ by an ulp).
_TIE = 1e-12


class Best(NamedTuple):
    """The best threshold per column ``(K,)``; ``missed``: no candidate met the constraint, ``reached``: the
    largest constrained measure of any candidate (meaningful where ``missed``)."""

    thresholds: torch.Tensor
    missed: torch.Tensor
    reached: torch.Tensor


def _counts(
    probs: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """tp, fp, fn, tn of the decisions ``probs >= thresholds`` over all entries pooled."""
    predicted = (probs.reshape(-1) >= thresholds).double()
    truth = targets.reshape(-1)
    tp = (predicted * truth).sum()
    fp, fn = predicted.sum() - tp, truth.sum() - tp
    return tp, fp, fn, len(truth) - tp - fp - fn


def score(probs: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor, metric: ThresholdMetric) -> float:
    """``metric`` of the decisions ``probs >= thresholds`` over all entries pooled (-inf: constraint missed)."""
    return metric.score(*_counts(probs, targets, thresholds)).item()


def rank(
    probs: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor, metric: ThresholdMetric
) -> tuple[bool, float]:
    """Orders thresholds like the tuner: those meeting the constraint by score, the others by the constrained
    measure (the fallback's criterion)."""
    counts = _counts(probs, targets, thresholds)
    score = metric.score(*counts).item()
    return (True, score) if score > -math.inf else (False, metric.constrained_measure(*counts).item())


def reported(score: float) -> float | None:
    # A constrained metric scores -inf where its constraint fails; JSON and the summary get None.
    return score if math.isfinite(score) else None


def best_thresholds(probs: torch.Tensor, targets: torch.Tensor, metric: ThresholdMetric) -> Best:
    """Best threshold per column of ``probs`` ``(N, K)`` float64 against 0/1 ``targets``."""
    chunk = max(1, _CHUNK_ELEMENTS // (len(probs) + 2))
    parts = [
        _best_in_chunk(probs[:, i : i + chunk], targets[:, i : i + chunk], metric)
        for i in range(0, probs.shape[1], chunk)
    ]
    return Best(*(torch.cat(column) for column in zip(*parts, strict=True)))


def _best_in_chunk(probs: torch.Tensor, targets: torch.Tensor, metric: ThresholdMetric) -> Best:
    cuts, counts, valid = _candidates(probs, targets)
    minus_inf = torch.full_like(cuts, -torch.inf)
    scores = torch.where(valid, metric.score(*counts), minus_inf)
    missed = scores.max(dim=0).values == -torch.inf  # only a constraint can rule out every candidate
    reached = torch.zeros(probs.shape[1], dtype=torch.float64)
    if missed.any():
        fallback = torch.where(valid, metric.constrained_measure(*counts), minus_inf)
        reached = fallback.max(dim=0).values
        scores = torch.where(missed, fallback, scores)
    # Ties go to the candidate nearest 0.5 (then the lower one): the least surprising of equally good rules.
    near_best = scores >= scores.max(dim=0, keepdim=True).values - _TIE
    distance = torch.where(near_best, (cuts - 0.5).abs(), torch.full_like(cuts, torch.inf))
    closest = distance == distance.min(dim=0, keepdim=True).values
    return Best(torch.where(closest, cuts, torch.full_like(cuts, torch.inf)).min(dim=0).values, missed, reached)


def _candidates(
    probs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Candidate cuts ``(N + 2, K)``, their counts tp, fp, fn, tn, and whether each cut can be made."""
    n, k = probs.shape
    sorted_probs, order = torch.sort(probs, dim=0, descending=True)
    # Cut c predicts the c most probable items positive; tp[c] counts the positives among them.
    zeros, ones = torch.zeros(1, k, dtype=torch.float64), torch.ones(1, k, dtype=torch.bool)
    tp = torch.cat([zeros, torch.cumsum(targets.gather(0, order), dim=0)])
    predicted = torch.arange(n + 1, dtype=torch.float64)[:, None].expand(n + 1, k)
    above = torch.cat([ones.double(), sorted_probs])  # sentinel 1 before the top item
    below = torch.cat([sorted_probs, zeros])  # sentinel 0 after the last
    cuts = (above + below) / 2
    # A cut between equal probabilities cannot be made (ties go together); `below < cut` also drops a midpoint
    # that rounds onto `below`, where `>=` would flip the item below it. "All positive" can always be made:
    # its cut 0 (when the lowest probability is 0) flags everything, as it should.
    valid = torch.cat([below[:-1] < cuts[:-1], ones, ones])
    half = probs >= 0.5
    tp = torch.cat([tp, (half * targets).sum(dim=0, keepdim=True)])
    predicted = torch.cat([predicted, half.sum(dim=0, keepdim=True).double()])
    cuts = torch.cat([cuts, torch.full((1, k), 0.5, dtype=torch.float64)])
    positives = tp[n : n + 1]  # cut n flags every item
    fp = predicted - tp
    return cuts, (tp, fp, positives - tp, n - positives - fp), valid
