"""Checks of `labelwise.decide.conformal`'s arguments: the level, the validation size it needs, RAPS's parameters."""

from __future__ import annotations

import math
from fractions import Fraction

from labelwise.errors import ConfigError, DataError

__all__ = ["RAPS_PENALTY", "check_enough", "check_level", "check_raps_params", "cutoff_rank", "min_calibration_size"]

RAPS_PENALTY = 0.01


def min_calibration_size(level: float) -> int:
    """Fewest validation items for which split conformal can guarantee ``level``.

    The set cutoff is the ``ceil((n + 1) * level)``-th smallest of ``n`` scores, which exists only when
    ``n >= level / (1 - level)``.

    Example:
        >>> min_calibration_size(0.9), min_calibration_size(0.95), min_calibration_size(0.8)
        (9, 19, 4)
    """
    exact = _exact_level(level)
    return math.ceil(exact / (1 - exact))


def _exact_level(level: float) -> Fraction:
    check_level(level)
    # repr gives the shortest decimal that round-trips, the one the user wrote: 0.9 -> 9/10, not 0.900000000000000022.
    return Fraction(repr(float(level)))


def cutoff_rank(num_samples: int, level: float) -> int:
    """``k = ceil((n + 1) * level)``: the order statistic that is the cutoff."""
    return math.ceil((num_samples + 1) * _exact_level(level))


def check_level(level: object) -> None:
    number = None if isinstance(level, bool) or not isinstance(level, int | float) else float(level)
    if number is not None and 0 < number < 1:
        return
    # Only a number that reads as a percentage gets the percentage hint.
    hint = f" Levels are fractions: for {number:g}% pass {number / 100:g}." if number and 1 < number < 100 else ""
    raise ConfigError(
        f"conformal level={level!r}; expected a number strictly between 0 and 1, the fraction of items whose set "
        f"must hold the truth.{hint} Pass e.g. `--conformal 0.9`."
    )


def check_raps_params(method: str, penalty: float | None, k_reg: int | None, *, fitted: bool) -> None:
    given = [name for name, value in (("penalty", penalty), ("k_reg", k_reg)) if value is not None]
    if method != "raps":
        if given:
            raise ConfigError(
                f"{' and '.join(given)} only apply to method='raps', not {method!r}; drop them or pass method='raps'."
            )
        return
    if fitted and len(given) != 2:
        raise ConfigError(f"a fitted RAPS ConformalSets needs penalty and k_reg, got {given or 'neither'}.")
    bad_penalty = isinstance(penalty, bool) or not isinstance(penalty, int | float) or not math.isfinite(penalty)
    if penalty is not None and (bad_penalty or penalty < 0):
        raise ConfigError(f"penalty={penalty!r}; expected a finite number >= 0 (default {RAPS_PENALTY}).")
    if k_reg is not None and (isinstance(k_reg, bool) or not isinstance(k_reg, int) or k_reg < 0):
        raise ConfigError(f"k_reg={k_reg!r}; expected an integer >= 0 (default: read from the validation data).")


def check_enough(num_samples: int, level: float) -> None:
    need = min_calibration_size(level)
    if num_samples < need:
        raise DataError(
            f"conformal sets at level {level:g} need at least {need} validation items, got {num_samples}: the cutoff "
            "is the ceil((n + 1) * level)-th smallest of n scores. Use a larger validation split or a lower "
            f"`--conformal` level ({num_samples} items allow at most {num_samples / (num_samples + 1):.3g})."
        )
