"""`DecideConfig`: how a trained model turns probabilities into decisions, as the user asked for it.

Every option is checked here, before any training starts, so a typo or an impossible combination costs the
user one line and no training time (and leaves nothing on disk). `check_for(task)` adds the checks that need
the Task, `labelwise.decide.policy.fit_policy` turns the config into a fitted `Policy`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from labelwise.errors import ConfigError, check_fields

if TYPE_CHECKING:
    from labelwise.task import Task

__all__ = [
    "DEFAULT_COVERAGE",
    "DEFAULT_NONE_STRATEGY",
    "MIN_COUNT",
    "NONE_STRATEGIES",
    "DecideConfig",
    "check_top_k_for",
]

# How a single-label model may answer "none of these": a score on the softmax model, or one sigmoid per class.
NONE_STRATEGIES = ("max_prob", "energy", "one_vs_rest")
DEFAULT_NONE_STRATEGY = "max_prob"
# Reject 5% of the validation items unless told otherwise: a common operating point in selective
# classification (Geifman & El-Yaniv 2017), and one a validation split of a few hundred items can estimate.
DEFAULT_COVERAGE = 0.95
# A label (or binary class) needs this many validation positives and negatives for a threshold of its own
# (`labelwise.decide.thresholds`); defined here, where `labelwise inspect` can read it without the scoring code.
MIN_COUNT = 5


@dataclass(frozen=True, kw_only=True)
class DecideConfig:
    """Decision options; the CLI maps ``--metric``, ``--top-k``, ``--allow-none``, ``--coverage``,
    ``--selective-accuracy`` and ``--conformal`` onto these fields one to one.

    Args:
        metric: what binary and per-label thresholds are tuned for: ``f1``, ``fbeta:B``, ``precision@recall:R``,
            ``recall@precision:P``, ``accuracy``, ``balanced_accuracy``, ``mcc``, ``youden``.
        top_k: multiclass: also give the ``top_k`` most probable classes as a set.
        allow_none: single-label data only: let the model answer "none of these" (abstain). ``max_prob`` or
            ``energy`` score the calibrated softmax model; ``one_vs_rest`` trains one sigmoid per class instead.
        coverage: with ``allow_none``: the fraction of validation items to answer (default 0.95).
        selective_accuracy: with ``allow_none``, instead of ``coverage``: the accuracy the answered validation
            items must reach; the model answers as many as it can at that accuracy.
        conformal: give split-conformal prediction sets that hold the true label (multilabel: all true labels)
            with this probability, e.g. 0.9.
        conformal_method: ``auto``, ``aps`` or ``raps`` (single-label), ``max_label`` (multilabel).

    Example:
        >>> DecideConfig(allow_none="energy").reject_target
        ('coverage', 0.95)
    """

    metric: str = "f1"
    top_k: int | None = None
    allow_none: str | None = None
    coverage: float | None = None
    selective_accuracy: float | None = None
    conformal: float | None = None
    conformal_method: str = "auto"

    def __post_init__(self) -> None:
        from labelwise.decide.objectives import parse_metric  # deferred, as the imports in the checks below: the CLI
        # reads these fields to build its help, without torch

        object.__setattr__(self, "metric", str(parse_metric(self.metric)))
        self._check_top_k()
        self._check_allow_none()
        _check_fraction("conformal", self.conformal, flag="--conformal", closed=False)
        if self.top_k is not None and self.conformal is not None:
            raise ConfigError(
                f"--top-k {self.top_k} and --conformal {self.conformal} both ask for the prediction set; "
                "pass one of them (conformal sets hold the true class at a stated rate, top-k sets have a fixed size)."
            )

    def _check_top_k(self) -> None:
        if self.top_k is not None:  # the class count is not known yet: `check_for` checks the upper bound
            from labelwise.ranking import check_top_k

            check_top_k(self.top_k, num_classes=None)

    def _check_allow_none(self) -> None:
        if self.allow_none is not None and self.allow_none not in NONE_STRATEGIES:
            close = difflib.get_close_matches(str(self.allow_none), NONE_STRATEGIES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"--allow-none {self.allow_none!r} is not a strategy; expected one of {', '.join(NONE_STRATEGIES)}."
                f"{hint}"
            )
        _check_fraction("coverage", self.coverage, flag="--coverage", closed=False)
        _check_fraction("selective_accuracy", self.selective_accuracy, flag="--selective-accuracy", closed=True)
        given = [f"--{n.replace('_', '-')}" for n in ("coverage", "selective_accuracy") if getattr(self, n) is not None]
        if given and self.allow_none is None:
            raise ConfigError(
                f"{' and '.join(given)} set how often the model may abstain, but abstaining is off; add "
                "--allow-none (single-label data only: a multilabel model's none is an empty prediction), or drop "
                "the option."
            )
        if len(given) == 2:
            raise ConfigError(
                "--coverage and --selective-accuracy both set the reject threshold; pass one of them "
                "(coverage: how many items to answer; selective accuracy: how accurate the answered ones must be)."
            )

    @property
    def reject_target(self) -> tuple[str, float]:
        """``("coverage", c)`` or ``("selective_accuracy", a)``: what the reject threshold is chosen for."""
        if self.selective_accuracy is not None:
            return "selective_accuracy", self.selective_accuracy
        return "coverage", self.coverage if self.coverage is not None else DEFAULT_COVERAGE

    @property
    def none_score(self) -> str | None:
        """The unknown score the reject rule thresholds (``one_vs_rest`` reads the max sigmoid: ``max_prob``)."""
        if self.allow_none is None:
            return None
        return "max_prob" if self.allow_none == "one_vs_rest" else self.allow_none

    def check_for(self, task: Task) -> None:
        """The checks that need the Task; raise `ConfigError` before any training.

        Raises:
            ConfigError: ``allow_none`` on multilabel labels, ``top_k`` on a task that is not multiclass or above
                its number of classes, or an unknown score the Task's head cannot give.
        """
        from labelwise.task import TaskKind

        if self.allow_none is not None and task.kind is TaskKind.MULTILABEL:
            raise ConfigError(
                "--allow-none is for single-label data; these labels are multilabel, and a multilabel model "
                "already answers none when no label passes its threshold (an empty prediction). Drop --allow-none."
            )
        if self.top_k is not None:
            check_top_k_for(self.top_k, task)
        if self.none_score is not None:
            from labelwise.decide.ood import check_score

            check_score(task, score=self.none_score)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecideConfig:
        """Rebuild a DecideConfig written by `to_dict`; unknown keys are errors."""
        check_fields(data, [f.name for f in fields(cls)], what="DecideConfig")
        return cls(**data)


def _check_fraction(name: str, value: float | None, *, flag: str, closed: bool) -> None:
    """``value`` in (0, 1) (``closed``: (0, 1]) or None."""
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (0 < value < 1 or (closed and value == 1)):
        interval = "(0, 1]" if closed else "(0, 1)"
        raise ConfigError(f"{flag} {value!r}; expected a fraction in {interval}, such as 0.9 ({name}).")


def check_top_k_for(top_k: Any, task: Task) -> int:
    """``top_k`` when ``task`` can give top-k sets and columns: a multiclass task, ``1 <= top_k <=`` its classes.

    The check of ``--top-k`` at training (`DecideConfig.check_for`) and at `predict` (`Policy.with_top_k`, the CLI),
    the task's kind first, so that a count the kind could never use is not first answered with a range.

    Raises:
        ConfigError: ``top_k`` on a binary or multilabel task, or outside ``1..num_classes``.
    """
    from labelwise.ranking import check_top_k
    from labelwise.task import TaskKind

    if task.kind is not TaskKind.MULTICLASS:
        raise ConfigError(
            f"--top-k is for multiclass tasks; this one is {task.kind}. Drop --top-k (for prediction sets on "
            "any task, train with --conformal)."
        )
    return check_top_k(top_k, num_classes=task.num_classes)
