"""The ``rows`` of a table request, checked against the model's feature columns and held as arrays.

`RowReader` is built once per server from the run's columns. A request of well-formed rows (objects holding every
feature, numbers in the numeric ones) is checked in a few passes over its values and its numeric features become
one float64 array, with no pandas; any other request takes the full checks, which name every problem at once.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labelwise.data._columns import ColumnName
from labelwise.data.column_kinds import boolean_value
from labelwise.errors import format_cells, format_examples
from labelwise.serve.bodies import RequestError, decode_base64, items_of, where

if TYPE_CHECKING:
    import pandas as pd

    from labelwise.data.images import ImageSpec

__all__ = ["RowReader", "TableRows"]

_MAX_SHOWN = 5
# difflib's ratio of names in lower case: 'mean radius' vs 'mean_radius' 0.91, 'x1' vs 'x_1' 0.8, 'x1' vs 'x0' 0.5
# (another feature, not a slip). The hint costs nothing when wrong: it is only given for a feature the row lacks.
_TYPO_CUTOFF = 0.6
_PLAIN_NUMBERS = frozenset({float, int, type(None)})  # what the fast path takes in a numeric feature


@dataclass(frozen=True)
class TableRows:
    """The checked rows of one table request.

    ``numeric`` is ``(N, K)`` float64 with NaN for null, one column per numeric feature (`RowReader.numeric`
    order), as an empty CSV cell of a numeric column reads; ``others`` holds each other feature's JSON values
    (None = null), and for a model that also reads an image column, the decoded bytes of each row's image.
    """

    numeric: np.ndarray
    others: dict[ColumnName, list[Any]]
    num_rows: int


class RowReader:
    """Reads the ``rows`` of table requests for a model's feature columns.

    Each feature takes what its kind reads (null everywhere: missing, filled in as a CSV's empty cell): a numeric one
    a number, a boolean one true/false, 0/1 or a yes/no string, a date one a date string, a categorical one a
    string, number or boolean, a text one a string. Missing features and values of the wrong kind are all reported;
    other fields, and the columns the model leaves out (an identifier), are ignored, as `labelwise predict` ignores
    other columns. A model that also reads an image column takes it as a base64 string per row.

    Args:
        row_columns: `labelwise.inputs.Inputs.row_columns`.
        image: the image column's name and spec, for a model that reads one beside the features.
    """

    def __init__(self, row_columns: Sequence[Any], *, image: tuple[str, ImageSpec] | None = None) -> None:
        read = [column for column in row_columns if column.width]
        self.image = image
        # JSON field -> column name, for every feature (and the image column), in the model's order
        self._names: dict[str, ColumnName] = {str(column.name): column.name for column in read}
        if image is not None:
            self._names[image[0]] = image[0]
        self._required = frozenset(self._names)
        self._kinds = {str(column.name): str(column.kind) for column in read}
        self._numeric = tuple(name for name, kind in self._kinds.items() if kind == "numeric")
        self._others = tuple((name, _KIND_VALUES[kind][0]) for name, kind in self._kinds.items() if kind != "numeric")

    @property
    def numeric(self) -> tuple[ColumnName, ...]:
        """The numeric features, in the order of `TableRows.numeric`'s columns."""
        return tuple(self._names[name] for name in self._numeric)

    def read(self, payload: Mapping[str, Any]) -> TableRows:
        """The checked rows of a request's JSON object.

        Raises:
            RequestError: no ``rows`` list, rows that are not objects or lack features, values of the wrong kind,
                images that do not decode.
        """
        rows = items_of(payload, "rows", other="images")
        parsed = self._fast(rows)
        if parsed is None:
            parsed = self._checked(rows)
        if self.image is not None:
            name, spec = self.image
            labels = [f"rows[{i}][{name!r}]" for i in range(len(rows))]
            parsed.others[name] = [item.data for item in decode_base64(parsed.others[name], labels, spec)]
        return parsed

    def _fast(self, rows: list[Any]) -> TableRows | None:
        """The rows when every one is an object holding every feature with a value of its kind, else None."""
        required = self._required
        if not all(type(row) is dict and row.keys() >= required for row in rows):
            return None
        names = self._numeric
        values = [[row[name] for name in names] for row in rows]
        if not {type(value) for row in values for value in row} <= _PLAIN_NUMBERS:
            return None  # strings of numbers, booleans, lists: the full checks read or refuse them
        try:
            numeric = np.array(values, dtype=np.float64).reshape(len(rows), len(names))
        except OverflowError:  # an integer of 400 digits
            return None
        if np.isinf(numeric).any():  # 1e999 parses to inf
            return None
        others: dict[ColumnName, list[Any]] = {}
        for name, fits in self._others:
            column = [row[name] for row in rows]
            if not all(value is None or fits(value) for value in column):
                return None
            others[self._names[name]] = column
        if self.image is not None:
            others[self.image[0]] = [row[self.image[0]] for row in rows]
        return TableRows(numeric, others, len(rows))

    def _checked(self, rows: list[Any]) -> TableRows:
        names = self._names
        problems = _shape_problems(rows, names)
        if problems:
            raise RequestError(
                f"{'; '.join(problems)}. Expected every row to hold the features {_names(names)} (other fields are "
                "ignored); add the missing ones (null for a missing value)."
            )
        _check_types(rows, self._kinds)
        numeric = np.array(
            [[math.nan if row[name] is None else float(row[name]) for name in self._numeric] for row in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(self._numeric))
        numeric_names = set(self._numeric)
        others = {names[name]: [row[name] for row in rows] for name in names if name not in numeric_names}
        return TableRows(numeric, others, len(rows))

    def columns(self, parts: Sequence[TableRows]) -> dict[ColumnName, Any]:
        """The features of the rows of ``parts``, in order, as `TablePreprocessor.features` takes them: a numeric
        column as float64 with NaN for null, any other as an object Series (as `frame` holds it)."""
        import pandas as pd

        numeric = np.ascontiguousarray(np.concatenate([part.numeric for part in parts]).T)  # one row per feature
        columns: dict[ColumnName, Any] = {self._names[name]: numeric[k] for k, name in enumerate(self._numeric)}
        for name in parts[0].others:
            columns[name] = pd.Series([value for part in parts for value in part.others[name]], dtype=object)
        return columns

    def frame(self, parts: Sequence[TableRows]) -> pd.DataFrame:
        """One frame of the rows of ``parts``, in order: numeric columns float64 with NaN for null (as an empty CSV
        cell of a numeric column reads), the others object (the image column: the images' bytes)."""
        import pandas as pd

        numeric = np.concatenate([part.numeric for part in parts])
        data: dict[ColumnName, Any] = {}
        position = {name: k for k, name in enumerate(self._numeric)}
        for key, name in self._names.items():
            if key in position:
                data[name] = numeric[:, position[key]]
            else:
                data[name] = pd.Series([value for part in parts for value in part.others[name]], dtype=object)
        return pd.DataFrame(data)


def _shape_problems(rows: Sequence[Any], names: Mapping[str, Any]) -> list[str]:
    """Rows that are not objects, or lack features; a field the model does not read is ignored, as `labelwise
    predict` ignores a column it was not trained on (an id, the label), but named when it looks like the missing one."""
    not_objects = [i for i, row in enumerate(rows) if not isinstance(row, dict)]
    if not_objects:
        return [f"{where('rows', not_objects)} not JSON object(s) of features"]
    missing: dict[str, list[int]] = {}
    typos: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        lacked = names.keys() - row.keys()
        extra = [str(name) for name in row.keys() - names.keys()]
        for name in lacked:
            missing.setdefault(name, []).append(i)
            typos.setdefault(name, set()).update(_close_names(name, extra))
    shown = {name: repr(name) + _did_you_mean(sorted(typos[name])) for name in missing}
    found = [f"{where('rows', at)} lack(s) feature(s) {names}" for at, names in _by_rows(missing, shown)]
    return found[:_MAX_SHOWN] + ([f"and {len(found) - _MAX_SHOWN} more"] if len(found) > _MAX_SHOWN else [])


def _close_names(name: str, fields: Sequence[str]) -> list[str]:
    """The field of a row most like the feature ``name`` it lacks (case and surrounding spaces aside), if any."""
    by_key = {field.strip().lower(): field for field in fields}
    close = difflib.get_close_matches(name.strip().lower(), list(by_key), n=1, cutoff=_TYPO_CUTOFF)
    return [by_key[key] for key in close]


def _did_you_mean(close: Sequence[str]) -> str:
    return f" (did you mean {format_examples(close)}?)" if close else ""


def _by_rows(features: dict[str, list[int]], shown: Mapping[str, str]) -> list[tuple[list[int], str]]:
    """Features grouped by the rows they concern: ``rows[0] lacks 'a', 'b'`` rather than one line per feature."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for name, rows in sorted(features.items()):
        groups.setdefault(tuple(rows), []).append(shown[name])
    return [(list(rows), ", ".join(names)) for rows, names in groups.items()]


def _check_types(rows: Sequence[dict[str, Any]], kinds: Mapping[str, str]) -> None:
    """Refuse values a feature's kind cannot read, all at once; a numeric feature's in the words of `labelwise
    predict`'s refusal of a CSV cell (`labelwise.data.tables.not_numbers_error`), so the two answers read the same."""
    not_numbers: list[str] = []
    problems: list[str] = []
    for name, kind in kinds.items():
        fits, expected = _KIND_VALUES[kind]
        bad = [i for i, row in enumerate(rows) if row[name] is not None and not fits(row[name])]
        if not bad:
            continue
        if kind == "numeric":
            not_numbers.append(format_cells(name, bad, [rows[i][name] for i in bad]))
        else:
            shown = format_examples([rows[i][name] for i in bad[:_MAX_SHOWN]])
            problems.append(f"{kind} feature {name!r} is {shown} in {where('rows', bad)}; expected {expected} or null")
    if not_numbers:
        problems.insert(
            0,
            f"numeric feature columns hold values that are not numbers: {'; '.join(not_numbers)}; expected a finite "
            "number or null (null is filled with the training median)",
        )
    if problems:
        raise RequestError(f"{'; '.join(problems)}; fix those values.")


def _is_finite_number(value: Any) -> bool:
    # JSON numbers such as 1e999 parse to inf, and 10**400 overflows float: neither is a feature value. A number
    # written as a string ("13.5", as a CSV row read by csv.DictReader holds it) is one, as `predict` reads it.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        return math.isfinite(float(value))
    except (OverflowError, ValueError):
        return False


def _is_category(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _is_boolean(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and boolean_value(value) is not None


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    import pandas as pd

    return bool(pd.notna(pd.to_datetime(value, errors="coerce", format="mixed")))


# What a feature of each kind takes in JSON, and how a refusal says so.
_KIND_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "numeric": (_is_finite_number, "a finite number"),
    "categorical": (_is_category, "a string, number or boolean"),
    "boolean": (_is_boolean, "true/false, 1/0 or a yes/no string"),
    "datetime": (_is_date, "a date string such as '2024-03-01'"),
    "text": (lambda value: isinstance(value, str), "a string"),
}


def _names(names: Mapping[str, Any]) -> str:
    listed = list(names)
    return ", ".join(repr(n) for n in listed[:20]) + (f" and {len(listed) - 20} more" if len(listed) > 20 else "")
