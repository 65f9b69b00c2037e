"""Decisions from probabilities: tuned thresholds, abstention ("none of these") and prediction sets.

`DecideConfig` holds what the user asked for; `fit_policy` fits a `Policy` on validation data from the parts
below, each usable on its own: `tune_thresholds` (a `DecisionRule`), `fit_abstention` on `unknown_scores` (an
`Abstention`), `fit_conformal` (`ConformalSets`).

Names load on first use (PEP 562): the CLI reads `labelwise.decide.config` to build its help without importing
the scoring modules and torchmetrics behind them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelwise._lazy import lazy_exports

if TYPE_CHECKING:
    from labelwise.decide.abstain import Abstention as Abstention
    from labelwise.decide.abstain import fit_abstention as fit_abstention
    from labelwise.decide.config import MIN_COUNT as MIN_COUNT
    from labelwise.decide.config import NONE_STRATEGIES as NONE_STRATEGIES
    from labelwise.decide.config import DecideConfig as DecideConfig
    from labelwise.decide.conformal import ConformalSets as ConformalSets
    from labelwise.decide.conformal import fit_conformal as fit_conformal
    from labelwise.decide.conformal import min_calibration_size as min_calibration_size
    from labelwise.decide.conformal import set_metrics as set_metrics
    from labelwise.decide.objectives import THRESHOLD_METRICS as THRESHOLD_METRICS
    from labelwise.decide.objectives import ThresholdMetric as ThresholdMetric
    from labelwise.decide.objectives import parse_metric as parse_metric
    from labelwise.decide.ood import UNKNOWN_SCORES as UNKNOWN_SCORES
    from labelwise.decide.ood import ood_metrics as ood_metrics
    from labelwise.decide.ood import risk_coverage as risk_coverage
    from labelwise.decide.ood import unknown_scores as unknown_scores
    from labelwise.decide.policy import Decisions as Decisions
    from labelwise.decide.policy import Policy as Policy
    from labelwise.decide.policy import fit_policy as fit_policy
    from labelwise.decide.rule import DecisionRule as DecisionRule
    from labelwise.decide.thresholds import tune_thresholds as tune_thresholds

_EXPORTS = {
    "Abstention": "labelwise.decide.abstain",
    "ConformalSets": "labelwise.decide.conformal",
    "DecideConfig": "labelwise.decide.config",
    "DecisionRule": "labelwise.decide.rule",
    "Decisions": "labelwise.decide.policy",
    "MIN_COUNT": "labelwise.decide.config",
    "NONE_STRATEGIES": "labelwise.decide.config",
    "Policy": "labelwise.decide.policy",
    "THRESHOLD_METRICS": "labelwise.decide.objectives",
    "ThresholdMetric": "labelwise.decide.objectives",
    "UNKNOWN_SCORES": "labelwise.decide.ood",
    "fit_abstention": "labelwise.decide.abstain",
    "fit_conformal": "labelwise.decide.conformal",
    "fit_policy": "labelwise.decide.policy",
    "min_calibration_size": "labelwise.decide.conformal",
    "ood_metrics": "labelwise.decide.ood",
    "parse_metric": "labelwise.decide.objectives",
    "risk_coverage": "labelwise.decide.ood",
    "set_metrics": "labelwise.decide.conformal",
    "tune_thresholds": "labelwise.decide.thresholds",
    "unknown_scores": "labelwise.decide.ood",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
