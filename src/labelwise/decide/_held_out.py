"""Whether tuning thresholds beats the default on data it was not tuned on: a bootstrap out-of-bag estimate.

A threshold tuned on validation items always scores at least as well as 0.5 on those items (0.5 is a candidate),
so the gain measured there says nothing about new data; with few positives it is mostly luck (issue 16: on breast
cancer with 90 % of the malignant rows removed, a threshold tuned on 5 validation positives lowered test F1 from
0.951 at 0.5 to 0.895). `held_out_gain` re-runs the whole tuning on bootstrap resamples of the validation items and
scores it against the default on the items each resample left out (about 37 % of them): the mean of those gains
estimates what tuning gains on new data, pessimistically (each resample holds about 63 % of the distinct items).
The tuner keeps the default unless that estimate is positive. With `ENOUGH` positives and negatives (pooled over
labels) the validation gain is not luck and each resample costs a full tuning on many items, so the check is
skipped there.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

__all__ = ["ENOUGH", "MAX_ROWS", "ROUNDS", "held_out_gain"]

# Resamples: the mean gain's standard error is about a fifth of one resample's spread. Each round is a whole tuning
# (37 ms on 10,000 binary items, 0.33 s on 2,000 items x 100 labels on 2 cores), so rounds are few.
ROUNDS = 30
# Positives and negatives (pooled over labels) from which the check is skipped: an F1 measured on 1,000 positives
# varies by about 0.01 from sample to sample, below the gains tuning is kept for.
ENOUGH = 1_000
MAX_ROWS = 50_000  # larger validation sets are subsampled, so that each round stays fast

Tune = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (probs, targets) -> thresholds
Score = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float]  # (probs, targets, thresholds) -> metric


def held_out_gain(
    probs: torch.Tensor, targets: torch.Tensor, *, tune: Tune, score: Score, default: torch.Tensor, seed: int = 0
) -> float | None:
    """Mean over `ROUNDS` bootstrap resamples of ``score(tuned) - score(default)`` on the out-of-bag items, where
    ``tuned = tune(resample)``; None when there are `ENOUGH` of each class to trust the tuning as it is, or when no
    resample leaves both classes on each side (too few items to tell).

    Args:
        probs: ``(N, K)`` float64 probabilities of the validation items (rows are items).
        targets: ``(N, K)`` 0/1 float64 targets.
        tune: the tuner, as it runs on the whole validation set (its warnings are silenced here).
        score: the metric of thresholds on some items.
        default: the thresholds to beat (0.5).
        seed: seeds the resamples.
    """
    positives = float(targets.sum())
    if min(positives, targets.numel() - positives) >= ENOUGH:
        return None
    generator = torch.Generator().manual_seed(seed)
    if len(probs) > MAX_ROWS:
        keep = torch.randperm(len(probs), generator=generator)[:MAX_ROWS]
        probs, targets = probs[keep], targets[keep]
    n, gains = len(probs), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample short of a class warns as the real tuning would
        for _ in range(ROUNDS):
            drawn = torch.randint(n, (n,), generator=generator)
            out = torch.ones(n, dtype=torch.bool)
            out[drawn] = False
            if not (_both_classes(targets[drawn]) and _both_classes(targets[out])):
                continue
            tuned = tune(probs[drawn], targets[drawn])
            gains.append(score(probs[out], targets[out], tuned) - score(probs[out], targets[out], default))
    return float(torch.tensor(gains).mean()) if gains else None


def _both_classes(targets: torch.Tensor) -> bool:
    positives = float(targets.sum())
    return 0.0 < positives < targets.numel()
