"""Threshold metrics: what a decision threshold is tuned for, parsed from specs such as ``fbeta:2``.

The forms (`THRESHOLD_METRICS`, also the values of ``--metric``):

- ``f1``; ``fbeta:B`` with B > 0: recall counts B times as much as precision, so ``fbeta:2`` favours
  recall and ``fbeta:0.5`` precision (``fbeta:1`` is ``f1``).
- ``precision@recall:R``: the highest precision among the thresholds whose recall is at least R, R in (0, 1].
- ``recall@precision:P``: the highest recall among the thresholds whose precision is at least P, P in (0, 1].
- ``accuracy``; ``balanced_accuracy`` (the mean recall of the classes present, like scikit-learn); ``mcc``.
- ``youden``: TPR + TNR - 1 (Youden's J, the height of the ROC point above the diagonal). With both classes
  present it equals 2 * balanced_accuracy - 1, so it picks the same thresholds as ``balanced_accuracy``; it
  only reads on a different scale (0 for a rule no better than chance, 1 for a perfect one).

Precision or recall alone are not offered: each is maximised by a degenerate threshold (flag the single most
probable item, or all of them). The constrained forms fix one of them and maximise the other.

Scores follow scikit-learn's ``zero_division=0``: a ratio with nothing to divide by is 0 (precision when
nothing is flagged, ...). A constrained metric scores ``-inf`` where its constraint fails; the constraint is
compared exactly (recall ``tp / (tp + fn) >= R``, as scikit-learn computes recall).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from labelwise.errors import ConfigError

__all__ = ["THRESHOLD_METRICS", "ThresholdMetric", "parse_metric"]

_Formula = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
# The parameter letter, its valid range in words, and examples, of each metric that takes one.
_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "fbeta": ("B", "B > 0 (B > 1 favours recall, B < 1 precision)", "`fbeta:2` or `fbeta:0.5`"),
    "precision@recall": ("R", "R in (0, 1], the recall to keep", "`precision@recall:0.9`"),
    "recall@precision": ("P", "P in (0, 1], the precision to keep", "`recall@precision:0.9`"),
}
# The constrained metrics: (objective, the measure the constraint bounds from below).
_CONSTRAINED = {"precision@recall": ("precision", "recall"), "recall@precision": ("recall", "precision")}


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # 0 where undefined, like sklearn's zero_division=0 (F1 with nothing to find and nothing found, ...).
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def _precision(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor, _: float) -> torch.Tensor:
    return _safe_div(tp, tp + fp)


def _recall(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor, _: float) -> torch.Tensor:
    return _safe_div(tp, tp + fn)


def _fbeta(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor, beta: float) -> torch.Tensor:
    # sklearn's form from the counts: (1 + b^2) tp / (b^2 (tp + fn) + (tp + fp)).
    return _safe_div((1 + beta**2) * tp, beta**2 * (tp + fn) + tp + fp)


def _accuracy(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor, _: float) -> torch.Tensor:
    return (tp + tn) / (tp + fp + fn + tn)


def _balanced_accuracy(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor, _: float
) -> torch.Tensor:
    # sklearn averages the recall of the classes present in the targets only.
    present = (tp + fn > 0).double() + (tn + fp > 0).double()
    return _safe_div(_safe_div(tp, tp + fn) + _safe_div(tn, tn + fp), present)


def _mcc(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor, _: float) -> torch.Tensor:
    return _safe_div(tp * tn - fp * fn, ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt())


def _youden(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor, _: float) -> torch.Tensor:
    return _safe_div(tp, tp + fn) + _safe_div(tn, tn + fp) - 1


# Each metric's objective; a constrained one's constraint is applied by `ThresholdMetric.score`.
_FORMULAS: dict[str, _Formula] = {
    "f1": lambda tp, fp, fn, tn, _: _fbeta(tp, fp, fn, tn, 1.0),
    "fbeta": _fbeta,
    "precision@recall": _precision,
    "recall@precision": _recall,
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "mcc": _mcc,
    "youden": _youden,
}
_MEASURES: dict[str, _Formula] = {"precision": _precision, "recall": _recall}

THRESHOLD_METRICS: tuple[str, ...] = tuple(
    f"{name}:{_PARAMETERS[name][0]}" if name in _PARAMETERS else name for name in _FORMULAS
)


@dataclass(frozen=True)
class ThresholdMetric:
    """A metric a decision threshold is tuned for; `parse_metric` makes one from a spec such as ``fbeta:2``.

    Args:
        name: the metric's name, one of `THRESHOLD_METRICS` without its parameter (``fbeta``, ``f1``, ...).
        param: B of ``fbeta``, R of ``precision@recall``, P of ``recall@precision``; None for the others.

    Example:
        >>> metric = parse_metric("precision@recall:0.90")
        >>> str(metric), metric.constraint
        ('precision@recall:0.9', 'recall >= 0.9')
        >>> tp, fp, fn, tn = torch.tensor([[8.0, 9.0], [2.0, 6.0], [2.0, 1.0], [8.0, 4.0]], dtype=torch.float64)
        >>> metric.score(tp, fp, fn, tn)  # recall 0.8 misses the constraint; recall 0.9 keeps it
        tensor([  -inf, 0.6000], dtype=torch.float64)
    """

    name: str
    param: float | None = None

    def __post_init__(self) -> None:
        if self.name not in _FORMULAS:
            raise _unknown(str(self.name), str(self.name), None)
        text = self.name if self.param is None else f"{self.name}:{self.param}"
        if self.name not in _PARAMETERS:
            if self.param is not None:
                raise _takes_none(text, self.name)
            return
        letter = _PARAMETERS[self.name][0]
        if isinstance(self.param, bool) or not isinstance(self.param, int | float):
            problem = f"has no {letter}" if self.param is None else f"has {letter}={self.param!r}, not a number"
            raise _bad_param(text, self.name, problem)
        object.__setattr__(self, "param", float(self.param))
        if not _in_range(self.name, self.param):
            raise _bad_param(text, self.name, f"has {letter}={_format(self.param)}, outside the range")

    def __str__(self) -> str:
        """The normalised spec, which `parse_metric` reads back: ``fbeta:2``, ``precision@recall:0.9``."""
        return self.name if self.param is None else f"{self.name}:{_format(self.param)}"

    @property
    def objective(self) -> str:
        """What is maximised: ``precision`` for ``precision@recall:R``, the spec itself for the others."""
        return _CONSTRAINED[self.name][0] if self.name in _CONSTRAINED else str(self)

    @property
    def constraint(self) -> str | None:
        """The constraint in words (``recall >= 0.9``), or None for an unconstrained metric."""
        if self.name not in _CONSTRAINED:
            return None
        return f"{_CONSTRAINED[self.name][1]} >= {_format(self.param or 0.0)}"

    def score(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
        """The metric from float64 counts of any one shape: the objective where the constraint holds, else -inf."""
        value = _FORMULAS[self.name](tp, fp, fn, tn, self.param or 0.0)
        if self.name not in _CONSTRAINED:
            return value
        met = self.constrained_measure(tp, fp, fn, tn) >= (self.param or 0.0)
        return torch.where(met, value, torch.full_like(value, -torch.inf))

    def constrained_measure(
        self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor
    ) -> torch.Tensor:
        """What the constraint bounds (recall for ``precision@recall:R``); the score for an unconstrained metric.

        Where no threshold meets the constraint, the one with the largest constrained measure is used.
        """
        if self.name not in _CONSTRAINED:
            return self.score(tp, fp, fn, tn)
        return _MEASURES[_CONSTRAINED[self.name][1]](tp, fp, fn, tn, 0.0)


def parse_metric(text: str | ThresholdMetric) -> ThresholdMetric:
    """Read a threshold metric spec (`THRESHOLD_METRICS`); case and spaces are ignored.

    Args:
        text: a spec such as ``f1``, ``fbeta:0.5`` or ``recall@precision:0.95``; a ThresholdMetric passes through.

    Returns:
        the ThresholdMetric; ``str()`` of it is the normalised spec.

    Raises:
        ConfigError: an unknown name (with the closest one), or a missing, non-numeric or out-of-range parameter.

    Example:
        >>> parse_metric(" FBeta:2.0 ")
        ThresholdMetric(name='fbeta', param=2.0)
        >>> str(parse_metric("recall@precision:.95"))
        'recall@precision:0.95'
    """
    if isinstance(text, ThresholdMetric):
        return text
    if not isinstance(text, str):
        raise ConfigError(
            f"metric={text!r} is not a metric spec; expected a string, one of {', '.join(THRESHOLD_METRICS)}. "
            "Pass e.g. metric='f1'."
        )
    name, sep, raw = (part.strip() for part in text.strip().lower().partition(":"))
    if name not in _FORMULAS:
        raise _unknown(text, name, raw if sep else None)
    if name not in _PARAMETERS:
        if sep:
            raise _takes_none(text, name)
        return ThresholdMetric(name)
    letter = _PARAMETERS[name][0]
    if not raw:
        raise _bad_param(text, name, f"has no {letter}")
    try:
        value = float(raw)
    except ValueError:
        raise _bad_param(text, name, f"has {letter}={raw!r}, not a number") from None
    if not _in_range(name, value):
        raise _bad_param(text, name, f"has {letter}={raw}, outside the range")
    return ThresholdMetric(name, value)


def _in_range(name: str, value: float) -> bool:
    # NaN fails every comparison; fbeta:inf would be recall alone, which flags everything.
    return 0.0 < value < math.inf if name == "fbeta" else 0.0 < value <= 1.0


def _format(value: float) -> str:
    """The shortest text that reads back as ``value``: 2.0 -> '2', 0.9 -> '0.9'."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _bad_param(text: str, name: str, problem: str) -> ConfigError:
    letter, valid, examples = _PARAMETERS[name]
    return ConfigError(f"metric={text!r} {problem}; expected `{name}:{letter}` with {valid}. Use e.g. {examples}.")


def _takes_none(text: str, name: str) -> ConfigError:
    return ConfigError(f"metric={text!r}: {name} takes no parameter; expected `{name}`. Use `{name}`.")


def _unknown(text: str, name: str, raw: str | None) -> ConfigError:
    close = difflib.get_close_matches(name, _FORMULAS, n=1)
    if name in ("precision", "recall"):
        hint = (
            " (precision or recall alone are maximised by flagging one item or all of them; use f1, or keep one "
            "and maximise the other with precision@recall:R or recall@precision:P.)"
        )
    elif close:
        guess = close[0]
        if guess in _PARAMETERS:
            guess += f":{raw}" if raw else f":{_PARAMETERS[guess][0]}"
        hint = f" Did you mean {guess!r}?"
    else:
        hint = " Use one of them with `--metric` (`metric=` in Python)."
    return ConfigError(
        f"metric={text!r} cannot tune a decision threshold; expected one of {', '.join(THRESHOLD_METRICS)} "
        f"(B > 0; R, P in (0, 1]).{hint}"
    )
