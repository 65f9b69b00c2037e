"""Errors and warnings raised by labelwise.

Every error is a ``LabelwiseError`` and also the builtin a user would catch without knowing us, so
``except ValueError`` keeps working::

    LabelwiseError
     ├── LabelError        (ValueError)              labels that cannot define or fit the Task
     ├── DataError         (ValueError)              features, tables, images, files
     ├── ConfigError       (ValueError, TypeError)   options that are out of range or contradict each other
     ├── NotFittedError    (AttributeError)          a model used before it was fitted
     ├── ArtifactError     (OSError)                 a run directory that cannot be written or read
     └── TrainingError     (RuntimeError)            training that cannot go on (non-finite loss, ...)

    LabelwiseWarning (UserWarning)
     ├── DataWarning                  the data is usable but probably not what you meant
     ├── PossibleMistakeWarning       a setting that is legal but likely wrong
     └── TrainingWarning              training goes on, but the model is not learning what it should

Messages answer three questions: what was found, what was expected, how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "DataWarning",
    "LabelError",
    "LabelwiseError",
    "LabelwiseWarning",
    "NotFittedError",
    "PossibleMistakeWarning",
    "TrainingError",
    "TrainingWarning",
    "check_fields",
    "format_cells",
    "format_examples",
    "format_rows",
]


class LabelwiseError(Exception):
    """Base class of every error labelwise raises on purpose."""


class LabelError(LabelwiseError, ValueError):
    """Labels that cannot define a Task, or that the Task cannot encode."""


class DataError(LabelwiseError, ValueError):
    """A table, image, folder or feature column that cannot be used as given."""


class ConfigError(LabelwiseError, ValueError, TypeError):
    """An option that is out of range, of the wrong type, or contradicts another."""


class NotFittedError(LabelwiseError, AttributeError):
    """A model or estimator used before it was fitted."""


class ArtifactError(LabelwiseError, OSError):
    """A run directory that cannot be written, read, or does not hold a labelwise model."""


class TrainingError(LabelwiseError, RuntimeError):
    """Training that cannot go on, with the reason and what to try."""


class LabelwiseWarning(UserWarning):
    """Base class of labelwise warnings; filter it to silence them all."""


class DataWarning(LabelwiseWarning):
    """The data is usable but probably not what was meant."""


class PossibleMistakeWarning(LabelwiseWarning):
    """A legal setting that is likely a mistake."""


class TrainingWarning(LabelwiseWarning):
    """Training goes on, but the model is not learning what it should (collapse onto one class, no learning)."""


def format_examples(items: Sequence[object], *, limit: int = 5) -> str:
    """List up to ``limit`` reprs and how many more, the way every message lists offending values.

    Example:
        >>> format_examples(["a", "b"])
        "'a', 'b'"
        >>> format_examples([3, 7, 9, 11, 12, 15, 20])
        '3, 7, 9, 11, 12 and 2 more'
    """
    items = list(items)
    shown = ", ".join(repr(item) for item in items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def format_rows(rows: Sequence[int], *, limit: int = 5) -> str:
    """Name offending rows (0-based positions in the data as given).

    Example:
        >>> format_rows([4])
        'row 4'
        >>> format_rows([1, 2, 3, 5, 8, 13])
        'rows 1, 2, 3, 5, 8 and 1 more (6 rows)'
    """
    rows = [int(r) for r in rows]
    if len(rows) == 1:
        return f"row {rows[0]}"
    tail = f" ({len(rows)} rows)" if len(rows) > limit else ""
    return f"rows {format_examples(rows, limit=limit)}{tail}"


def format_cells(column: object, rows: Sequence[int], values: Sequence[object]) -> str:
    """Name a column's offending cells: the rows, then their distinct values (from the first 20 rows).

    ``values`` holds one value per row of ``rows``. `labelwise predict` (a CSV cell) and `labelwise serve` (a JSON
    row) describe a value a numeric column cannot take in these words, so both answers read the same.

    Example:
        >>> format_cells("x1", [3, 8], ["tall", "tall"])
        "'x1' in rows 3, 8 ('tall')"
    """
    distinct: dict[str, object] = {}
    for value in values[:20]:
        distinct.setdefault(repr(value), value)
    return f"{column!r} in {format_rows(rows)} ({format_examples(list(distinct.values()))})"


def check_fields(data: Mapping[str, object], known: Sequence[str], *, what: str) -> None:
    """Raise `ConfigError` for keys of ``data`` that are not ``known`` fields of ``what``, with did-you-mean.

    Used by every ``from_dict``: a key we do not know is a typo or an artifact from a newer labelwise, and
    silently dropping it would change what the saved model does.

    Example:
        >>> check_fields({"threshhold": 0.5}, ["threshold", "metric"], what="DecisionRule")
        Traceback (most recent call last):
        ...
        labelwise.errors.ConfigError: unknown DecisionRule fields 'threshhold' (did you mean 'threshold'?); \
expected some of threshold, metric. The artifact may come from a newer labelwise: upgrade to load it.
    """
    unknown = [key for key in data if key not in known]
    if unknown:
        hints = {key: difflib.get_close_matches(str(key), known, n=1) for key in unknown}
        listed = ", ".join(f"{k!r}" + (f" (did you mean {m[0]!r}?)" if m else "") for k, m in hints.items())
        raise ConfigError(
            f"unknown {what} fields {listed}; expected some of {', '.join(known)}. "
            "The artifact may come from a newer labelwise: upgrade to load it."
        )
