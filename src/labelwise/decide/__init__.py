"""Decisions from probabilities: tuned thresholds, abstention ("none of these") and prediction sets.

`DecideConfig` holds what the user asked for; `fit_policy` fits a `Policy` on validation data from the parts
below, each usable on its own: `tune_thresholds` (a `DecisionRule`), `fit_abstention` on `unknown_scores` (an
`Abstention`), `fit_conformal` (`ConformalSets`).
"""

from __future__ import annotations

from labelwise.decide.abstain import Abstention as Abstention
from labelwise.decide.abstain import fit_abstention as fit_abstention
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
from labelwise.decide.thresholds import MIN_COUNT as MIN_COUNT
from labelwise.decide.thresholds import tune_thresholds as tune_thresholds

__all__ = [
    "MIN_COUNT",
    "NONE_STRATEGIES",
    "THRESHOLD_METRICS",
    "UNKNOWN_SCORES",
    "Abstention",
    "ConformalSets",
    "DecideConfig",
    "Decisions",
    "DecisionRule",
    "Policy",
    "ThresholdMetric",
    "fit_abstention",
    "fit_conformal",
    "fit_policy",
    "min_calibration_size",
    "ood_metrics",
    "parse_metric",
    "risk_coverage",
    "set_metrics",
    "tune_thresholds",
    "unknown_scores",
]
