"""The reject rule: answer "none of these" when an item's unknown score is above a threshold fitted on validation data.

`fit_abstention` takes the unknown scores (`unknown_scores`) of validation items, all of known classes, and
whether the model's decision on each was right, and fits the threshold for one target:

- ``coverage``: the smallest threshold that accepts (``score <= threshold``) at least that fraction of the
  validation items. Items with equal scores are accepted or rejected together, so the achieved coverage can
  exceed the target (e.g. many items with ``max_prob`` 0).
- ``selective_accuracy``: the largest validation coverage whose accuracy on the accepted items is at least the
  target. If no coverage reaches it, a `DataWarning` says what was reached, and the coverage with the best
  selective accuracy is used (the largest one among equals).

Candidate thresholds are the distinct validation scores, so the threshold is always one of them: an item scoring
above every validation item abstains even at ``coverage=1.0``. Accuracy is measured on known classes only; how
many real unknowns the rule catches is `ood_metrics`' business, on data that has some.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from labelwise.decide.ood import (
    _check_score_name,
    _check_score_shape,
    _coverage_index,
    _Curve,
    _is_fraction,
    _selective_curve,
)
from labelwise.errors import ConfigError, DataWarning, check_fields, format_examples

__all__ = ["ABSTAIN_TARGETS", "Abstention", "fit_abstention"]

ABSTAIN_TARGETS = ("coverage", "selective_accuracy")
# How each score reads in a sentence: max_prob's unknown score is 1 - the top probability, not the probability.
_SCORE_TEXT = {"max_prob": "1 - max prob"}
_FLAGS = {"coverage": "--coverage", "selective_accuracy": "--selective-accuracy"}


@dataclass(frozen=True, kw_only=True)
class Abstention:
    """A fitted reject rule: abstain when the unknown score is above ``threshold``.

    Args:
        score: the unknown score it thresholds, one of `UNKNOWN_SCORES`.
        threshold: abstain when ``score > threshold``.
        target: what was fitted for, ``"coverage"`` or ``"selective_accuracy"``.
        target_value: the target asked for, in (0, 1].
        valid_coverage: the fraction of validation items it accepts.
        valid_selective_accuracy: the accuracy on the validation items it accepts.
        num_samples: number of validation items it was fitted on.

    Example:
        >>> rule = Abstention(score="energy", threshold=-3.2, target="coverage", target_value=0.95,
        ...                   valid_coverage=0.95, valid_selective_accuracy=0.996, num_samples=288)
        >>> rule.abstains(torch.tensor([-5.0, -3.2, -1.0], dtype=torch.float64))
        tensor([False, False,  True])
    """

    score: str
    threshold: float
    target: str
    target_value: float
    valid_coverage: float
    valid_selective_accuracy: float
    num_samples: int

    def __post_init__(self) -> None:
        _check_score_name(self.score)
        if self.target not in ABSTAIN_TARGETS:
            raise ConfigError(f"target={self.target!r}; expected one of {', '.join(ABSTAIN_TARGETS)}.")
        numbers = ("threshold", "target_value", "valid_coverage", "valid_selective_accuracy")
        values = {name: getattr(self, name) for name in numbers}
        if any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in values.values()):
            raise ConfigError(
                f"{', '.join(f'{k}={v!r}' for k, v in values.items())}; expected finite numbers. "
                "Fit the rule with `fit_abstention`."
            )
        for name in numbers:
            object.__setattr__(self, name, float(values[name]))
        bad = [f"{name}={values[name]!r}" for name in numbers[1:] if not 0.0 <= values[name] <= 1.0]
        if bad or not _is_fraction(self.target_value):
            raise ConfigError(
                f"{', '.join(bad or [f'target_value={self.target_value!r}'])}; expected target_value in (0, 1] and "
                "the validation coverage and selective accuracy in [0, 1]. Fit the rule with `fit_abstention`."
            )
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples < 1:
            raise ConfigError(f"num_samples={self.num_samples!r}; expected an integer >= 1.")

    def abstains(self, scores: torch.Tensor) -> torch.Tensor:
        """Which items to abstain on: ``(N,)`` bool, True where ``score > threshold``.

        Args:
            scores: ``(N,)`` float unknown scores of the same kind (`score`) as the rule was fitted on.

        Returns:
            ``(N,)`` bool; a NaN score abstains (nothing vouches for that item).
        """
        _check_score_shape(scores, score=repr(self.score))
        # float64, the precision the threshold was fitted in: it is one of the validation scores, and a float32
        # comparison would round it and flip the items that sit on it.
        return ~(scores.detach().double() <= self.threshold)

    def describe(self) -> str:
        """One line for the training summary.

        Example:
            >>> Abstention(score="energy", threshold=-3.2, target="coverage", target_value=0.95,
            ...            valid_coverage=0.95, valid_selective_accuracy=0.996, num_samples=288).describe()
            'abstain when energy > -3.2: 95% coverage on 288 validation items, selective accuracy 0.996'
        """
        line = (
            f"abstain when {_SCORE_TEXT.get(self.score, self.score)} > {self.threshold:.4g}: "
            f"{_percent(self.valid_coverage)} coverage on "
            f"{self.num_samples} validation items, selective accuracy {self.valid_selective_accuracy:.3f}"
        )
        if self.target == "selective_accuracy":
            reached = "" if self.valid_selective_accuracy >= self.target_value else " not reached"
            return f"{line} (target {self.target_value:.4g}{reached})"
        if self.valid_coverage != self.target_value:
            # Coverage moves in steps of 1/N, and tied scores are accepted together.
            return f"{line} (target {_percent(self.target_value)}, the nearest reachable at or above it)"
        return line

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Abstention:
        """Rebuild an Abstention written by `to_dict`."""
        known = [f.name for f in fields(cls)]
        check_fields(data, known, what="Abstention")
        missing = [key for key in known if key not in data]
        if missing:
            raise ConfigError(
                f"Abstention fields {format_examples(missing)} are missing; expected all of {', '.join(known)}. "
                "Refit the rule with `fit_abstention`."
            )
        return cls(**data)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"


def fit_abstention(
    scores: torch.Tensor,
    correct: torch.Tensor,
    *,
    score: str,
    coverage: float | None = None,
    selective_accuracy: float | None = None,
) -> Abstention:
    """Fit the abstention threshold on validation items for one target (rules in the module docstring).

    Args:
        scores: ``(N,)`` float unknown scores of validation items of known classes (`unknown_scores`).
        correct: ``(N,)`` bool, True where the model's decision on the item was right.
        score: the name of the unknown score ``scores`` holds, one of `UNKNOWN_SCORES`.
        coverage: the fraction of validation items to keep answering, in (0, 1].
        selective_accuracy: the accuracy wanted on the answered items, in (0, 1].

    Returns:
        the fitted Abstention.

    Raises:
        ConfigError: both targets or neither, a target outside (0, 1], an unknown score name, or inputs of the
            wrong shape or dtype.
        DataError: no items, or non-finite scores.

    Warns:
        DataWarning: no coverage reaches ``selective_accuracy``.

    Example:
        >>> scores = torch.tensor([0.125, 0.25, 0.375, 0.5, 0.625])
        >>> correct = torch.tensor([True, True, True, False, True])
        >>> rule = fit_abstention(scores, correct, score="max_prob", coverage=0.6)
        >>> rule.threshold, rule.valid_selective_accuracy
        (0.375, 1.0)
        >>> fit_abstention(scores, correct, score="max_prob", selective_accuracy=0.8).describe()
        'abstain when 1 - max prob > 0.625: 100% coverage on 5 validation items, selective accuracy 0.800 (target 0.8)'
    """
    _check_score_name(score)
    target, value = _check_target(coverage=coverage, selective_accuracy=selective_accuracy)
    curve = _selective_curve(scores, correct)
    if target == "coverage":
        k = _coverage_index(curve, value)
    else:
        k = _selective_accuracy_index(curve, value, score=score)
    accepted = int(curve.accepted[k].item())
    return Abstention(
        score=score,
        threshold=curve.thresholds[k].item(),
        target=target,
        target_value=value,
        valid_coverage=accepted / curve.num_samples,
        valid_selective_accuracy=curve.flagged[k].item() / accepted,
        num_samples=curve.num_samples,
    )


def _check_target(*, coverage: float | None, selective_accuracy: float | None) -> tuple[str, float]:
    given = {
        name: v for name, v in (("coverage", coverage), ("selective_accuracy", selective_accuracy)) if v is not None
    }
    if len(given) != 1:
        found = "both" if given else "neither"
        raise ConfigError(
            f"fit_abstention got {found} of `coverage` and `selective_accuracy`; expected exactly one target. "
            "Pass `--coverage C` (the fraction of items to keep answering) or `--selective-accuracy A` "
            "(the accuracy wanted on the answered items)."
        )
    ((target, value),) = given.items()
    if not _is_fraction(value):
        example = "0.95" if target == "coverage" else "0.99"
        raise ConfigError(
            f"{target}={value!r} is outside (0, 1]; expected a fraction in (0, 1], such as "
            f"`{_FLAGS[target]} {example}`."
        )
    return target, float(value)


def _selective_accuracy_index(curve: _Curve, target: float, *, score: str) -> int:
    """The largest coverage whose selective accuracy reaches ``target``; else the best, with a warning."""
    accuracy = curve.flagged.double() / curve.accepted.double()
    reached = (accuracy >= target).nonzero()
    if len(reached):
        return int(reached[-1].item())
    best = accuracy.max()
    k = int((accuracy == best).nonzero()[-1].item())
    warnings.warn(
        DataWarning(
            f"no coverage reaches selective accuracy {target:.4g} on the {curve.num_samples} validation items: the "
            f"best is {best.item():.4g}, at {_percent(curve.accepted[k].item() / curve.num_samples)} coverage "
            f"(abstain when {score} > {curve.thresholds[k].item():.4g}), which the rule uses. Lower "
            "`--selective-accuracy`, fit for `--coverage` instead, or give more validation data or a better model."
        ),
        stacklevel=3,
    )
    return k
