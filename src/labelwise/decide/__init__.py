"""Decisions from probabilities: decision rules with thresholds tuned on validation data."""

from __future__ import annotations

from labelwise.decide.thresholds import MIN_COUNT as MIN_COUNT
from labelwise.decide.thresholds import THRESHOLD_METRICS as THRESHOLD_METRICS
from labelwise.decide.thresholds import DecisionRule as DecisionRule
from labelwise.decide.thresholds import tune_thresholds as tune_thresholds

__all__ = ["MIN_COUNT", "THRESHOLD_METRICS", "DecisionRule", "tune_thresholds"]
