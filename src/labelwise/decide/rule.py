"""The decision rule: how probabilities become decisions (`tune_thresholds` fits one on validation data).

Binary: one threshold on P(positive). Multiclass: argmax. Multilabel: one threshold per label. An item is
positive when its probability is ``>= threshold``, compared in float64, the precision the thresholds were tuned in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from labelwise._value_checks import check_probs
from labelwise.decide.objectives import parse_metric
from labelwise.errors import ConfigError, check_fields, format_examples
from labelwise.task import Label, Task, TaskKind

__all__ = ["DecisionRule"]


@dataclass(frozen=True, kw_only=True)
class DecisionRule:
    """How probabilities become decisions; `tune_thresholds` fits one, `DecisionRule.default` is 0.5 / argmax.

    Args:
        kind: the Task kind.
        classes: the Task's classes (to name them in `describe`).
        threshold: binary: P(positive) at or above which an item is positive.
        thresholds: multilabel: one threshold per label, in `classes` order.
        metric: the metric spec the thresholds were tuned for, normalised (`parse_metric`); None: not tuned.
        shared_threshold: multilabel: the threshold tuned on all labels pooled.
        shared_labels: multilabel: labels too rare to tune that use `shared_threshold`.
        num_samples: number of validation items tuned on.
        num_positives: their positives (multilabel: positive labels, all labels together); 0: not recorded.
        tuned_score: the metric on the tuning data with these thresholds (multilabel: all labels pooled); for
            a constrained metric (``precision@recall:R``, ...) its objective, or None where the constraint fails.
        default_score: the same with threshold 0.5.
        held_out_gain: what tuning gained over 0.5 on validation items it was not tuned on (the mean over
            bootstrap resamples, `labelwise.decide._held_out`); None: not estimated (constrained metric, no tuning).
        kept_default: the tuned thresholds did not beat 0.5 out of bag (``held_out_gain <= 0``), so 0.5 is kept.

    Example:
        >>> rule = DecisionRule(kind="binary", classes=("benign", "malignant"), threshold=0.3)
        >>> rule.decide(torch.tensor([[0.8, 0.2], [0.6, 0.4]]))
        tensor([0, 1])
    """

    kind: TaskKind
    classes: tuple[Label, ...]
    threshold: float | None = None
    thresholds: tuple[float, ...] | None = None
    metric: str | None = None
    shared_threshold: float | None = None
    shared_labels: tuple[Label, ...] = ()
    num_samples: int = 0
    num_positives: int = 0
    tuned_score: float | None = None
    default_score: float | None = None
    held_out_gain: float | None = None
    kept_default: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", TaskKind(self.kind))
        except ValueError:
            raise ConfigError(f"kind={self.kind!r}; expected binary, multiclass or multilabel.") from None
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "shared_labels", tuple(self.shared_labels))
        try:
            for name in ("threshold", "shared_threshold"):
                if getattr(self, name) is not None:
                    object.__setattr__(self, name, float(getattr(self, name)))
            if self.thresholds is not None:
                object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        except (TypeError, ValueError):
            raise ConfigError(
                f"thresholds must be numbers in [0, 1], got threshold={self.threshold!r}, "
                f"thresholds={self.thresholds!r}. Use `DecisionRule.default(task)` or `tune_thresholds`."
            ) from None
        if self.metric is not None:
            object.__setattr__(self, "metric", str(parse_metric(self.metric)))
        self._check_scores()
        self._check_thresholds()

    def _check_scores(self) -> None:
        # JSON has no inf or NaN; a constrained metric whose constraint fails reports None instead.
        scores = {"tuned_score": self.tuned_score, "default_score": self.default_score}
        bad = {name: value for name, value in scores.items() if value is not None and not math.isfinite(value)}
        if bad:
            found = ", ".join(f"{name}={value!r}" for name, value in bad.items())
            raise ConfigError(
                f"{found}; expected a finite number or None. Pass None where the metric's constraint fails."
            )

    def _check_thresholds(self) -> None:
        wants = _KIND_RULES[self.kind].field
        given = [name for name in ("threshold", "thresholds") if getattr(self, name) is not None]
        if given != ([wants] if wants else []):
            raise ConfigError(
                f"a {self.kind} DecisionRule takes {f'`{wants}`' if wants else 'no threshold (argmax)'}, got "
                f"{', '.join(f'`{g}`' for g in given) or 'none'}. "
                "Use `DecisionRule.default(task)` or `tune_thresholds`."
            )
        values = [self.threshold] if self.threshold is not None else list(self.thresholds or ())
        if wants == "thresholds" and len(values) != len(self.classes):
            raise ConfigError(f"{len(values)} thresholds for {len(self.classes)} labels; expected one per label.")
        bad = [v for v in values + [self.shared_threshold or 0.5] if not 0.0 <= v <= 1.0]
        if bad:
            raise ConfigError(f"thresholds must lie in [0, 1], got {format_examples(bad)}.")

    @classmethod
    def default(cls, task: Task) -> DecisionRule:
        """The untuned rule: threshold 0.5 (binary, each label of multilabel) or argmax (multiclass)."""
        field = _KIND_RULES[task.kind].field
        return cls(
            kind=task.kind,
            classes=task.classes,
            threshold=0.5 if field == "threshold" else None,
            thresholds=(0.5,) * task.num_classes if field == "thresholds" else None,
        )

    def decide(self, probs: torch.Tensor) -> torch.Tensor:
        """Decisions from probabilities ``(N, num_classes)`` (`Task.probabilities`).

        Returns:
            binary and multiclass: ``(N,)`` long class indices; multilabel: ``(N, C)`` bool.
        """
        probs = check_probs(probs, kind=self.kind, num_classes=len(self.classes))
        return _KIND_RULES[self.kind].decide(self, probs)

    def describe(self) -> str:
        """One line for the training summary.

        Example:
            >>> DecisionRule(kind="binary", classes=("benign", "malignant"), threshold=0.37, metric="f1",
            ...              num_samples=114).describe()
            "threshold 0.37 on P('malignant'), tuned for f1 on 114 validation items"
        """
        return _KIND_RULES[self.kind].describe(self)

    def _tuned(self) -> str:
        """How the thresholds were tuned and what that gained, for `describe`."""
        positives = f" with {self.num_positives} positives" if self.num_positives else ""
        on = f"{self.num_samples} validation items{positives}"
        tuned = f", tuned for {self.metric} on {on}" if self.metric else " (not tuned)"
        return tuned + self._gain()

    def _gain(self) -> str:
        """The tuned score against 0.5's, for `describe`."""
        if self.metric is None:
            return ""
        metric = parse_metric(self.metric)
        tuned, default = self.tuned_score, self.default_score
        if self.kept_default:
            return (
                f"; 0.5 kept: the tuned threshold lost to it on the items each bootstrap resample left out "
                f"({metric} {self.held_out_gain:+.3f} on average)"
            )
        if metric.constraint is None:
            if tuned is None or default is None:
                return ""
            held = "" if self.held_out_gain is None else f"; {self.held_out_gain:+.3f} out of bag"
            return f" ({metric} {tuned:.3f} vs {default:.3f} at 0.5{held})"
        if tuned is None:
            return f" (no threshold reached {metric.constraint} on the validation data)"
        at_half = f"{default:.3f} at 0.5" if default is not None else f"0.5 misses {metric.constraint}"
        return f" ({metric.objective} {tuned:.3f} with {metric.constraint}, vs {at_half})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        data = asdict(self)
        data |= {"kind": str(self.kind), "classes": list(self.classes), "shared_labels": list(self.shared_labels)}
        data["thresholds"] = None if self.thresholds is None else list(self.thresholds)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionRule:
        """Rebuild a DecisionRule written by `to_dict`."""
        check_fields(data, [f.name for f in fields(cls)], what="DecisionRule")
        return cls(**data)


# -- per kind: which threshold field, how probabilities become decisions, the summary line ------------------------
# Decisions compare in float64, the precision the thresholds were tuned in: a midpoint between two float32
# probabilities may round onto one of them in float32 and flip that item.
def _binary_decide(rule: DecisionRule, probs: torch.Tensor) -> torch.Tensor:
    threshold = rule.threshold if rule.threshold is not None else 0.5  # set for binary by __post_init__
    return (probs[:, 1].double() >= threshold).long()


def _multiclass_decide(rule: DecisionRule, probs: torch.Tensor) -> torch.Tensor:
    return probs.argmax(dim=1)


def _multilabel_decide(rule: DecisionRule, probs: torch.Tensor) -> torch.Tensor:
    return probs.double() >= torch.tensor(rule.thresholds, dtype=torch.float64, device=probs.device)


def _binary_describe(rule: DecisionRule) -> str:
    return f"threshold {rule.threshold:.3g} on P({rule.classes[1]!r}){rule._tuned()}"


def _multiclass_describe(rule: DecisionRule) -> str:
    return f"argmax over {len(rule.classes)} classes"


def _multilabel_describe(rule: DecisionRule) -> str:
    values = rule.thresholds or ()
    spread = f"{min(values):.3g}" if min(values) == max(values) else f"{min(values):.3g}-{max(values):.3g}"
    shared = ""
    if rule.shared_labels:
        shared = (
            f"; {len(rule.shared_labels)} rare labels ({format_examples(rule.shared_labels, limit=3)}) "
            f"use the shared {rule.shared_threshold:.3g}"
        )
    return f"per-label thresholds {spread}{rule._tuned()}{shared}"


@dataclass(frozen=True)
class _KindRule:
    """One kind's rule: the threshold field it takes (None: argmax), `decide` and `describe`."""

    field: str | None
    decide: Callable[[DecisionRule, torch.Tensor], torch.Tensor]
    describe: Callable[[DecisionRule], str]


_KIND_RULES: dict[TaskKind, _KindRule] = {
    TaskKind.BINARY: _KindRule("threshold", _binary_decide, _binary_describe),
    TaskKind.MULTICLASS: _KindRule(None, _multiclass_decide, _multiclass_describe),
    TaskKind.MULTILABEL: _KindRule("thresholds", _multilabel_decide, _multilabel_describe),
}
