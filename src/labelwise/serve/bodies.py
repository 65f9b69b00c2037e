"""Read and check the body of ``POST /predict``: its size, its JSON, its rows of features or its images.

Everything here answers a client mistake with a `RequestError` (400, or 413 for a body over the limit) whose
one-line message names the field; nothing a client sends reaches the model unchecked.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labelwise.data._columns import ColumnName
from labelwise.data.column_kinds import boolean_value
from labelwise.data.images import ImageSpec, decode_image_bytes
from labelwise.data.tables import NumericColumn
from labelwise.errors import DataError, format_cells, format_examples

__all__ = [
    "ImageItem",
    "RequestError",
    "TableRows",
    "check_images",
    "parse_images",
    "parse_json",
    "parse_rows",
    "read_body",
]

_MAX_SHOWN = 5
# difflib's ratio of names in lower case: 'mean radius' vs 'mean_radius' 0.91, 'x1' vs 'x_1' 0.8, 'x1' vs 'x0' 0.5
# (another feature, not a slip). The hint costs nothing when wrong: it is only given for a feature the row lacks.
_TYPO_CUTOFF = 0.6
_DRAIN_FACTOR = 8  # an oversize body is read (and dropped) up to this many limits, so the client sees the 413


class RequestError(DataError):
    """A request the server refuses; ``status`` is the HTTP status code (400 or 413)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImageItem:
    """One image of a request: its id in the response, and the bytes of its file."""

    id: str
    data: bytes


async def read_body(chunks: AsyncIterator[bytes], *, content_length: str | None, limit: int) -> bytes:
    """The whole body, refusing one over ``limit`` bytes from its Content-Length or from the bytes that came.

    A chunked body has no Content-Length, so the bytes are counted as they arrive and never held past the limit.
    """
    declared = None
    if content_length is not None:
        if not content_length.strip().isdigit():
            raise RequestError(f"header Content-Length is {content_length!r}; expected a number of bytes.")
        declared = int(content_length)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit or (declared is not None and declared > limit):
            await _drain(chunks, budget=limit * _DRAIN_FACTOR - size)
            raise _too_large(declared or size, limit=limit)
        parts.append(chunk)
    return b"".join(parts)


async def _drain(chunks: AsyncIterator[bytes], *, budget: int) -> None:
    # A client still sending its body may miss a response written before it is read; drop a bounded amount.
    async for chunk in chunks:
        budget -= len(chunk)
        if budget <= 0:
            return


def _too_large(size: int, *, limit: int) -> RequestError:
    return RequestError(
        f"the body holds {'more than ' if size <= limit else ''}{max(size, limit + 1):,} bytes, over this server's "
        f"limit of {limit:,} (--max-body); send fewer rows or images per request.",
        status=413,
    )


def parse_json(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; NaN and Infinity, which JSON does not have, are refused."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise RequestError(f"the body is not valid JSON ({_short(err)}); expected a JSON object.") from None
    if not isinstance(payload, dict):
        raise RequestError(f'the body is a JSON {_json_type(payload)}; expected an object such as {{"rows": [...]}}.')
    return payload


def _refuse_constant(name: str) -> Any:
    raise RequestError(f"the body holds {name}, which is not JSON; send null for a missing value.")


def _items(payload: Mapping[str, Any], key: str, *, other: str) -> list[Any]:
    """``payload[key]``, a non-empty list; any other top-level key is an error naming it."""
    extra = sorted(set(payload) - {key})
    if extra:
        hint = f" ({other!r} is for the other kind of model)" if other in extra else ""
        raise RequestError(f"unknown field(s) {format_examples(extra)}{hint}; expected only {key!r} for this model.")
    if key not in payload:
        raise RequestError(f"the body has no field {key!r}; expected {{{key!r}: [...]}} with one entry per item.")
    items = payload[key]
    if not isinstance(items, list) or not items:
        found = "an empty list" if isinstance(items, list) else f"a JSON {_json_type(items)}"
        raise RequestError(f"field {key!r} is {found}; expected a non-empty list with one entry per item.")
    return items


@dataclass(frozen=True)
class TableRows:
    """The checked rows of one table request, column by column: ``columns[name]`` holds JSON values (None = null).

    Kept as lists, not a DataFrame: the batch builds one frame for all its requests, which costs far less than one
    small frame per request.
    """

    columns: dict[ColumnName, list[Any]]
    numeric: frozenset[ColumnName]
    num_rows: int

    @staticmethod
    def frame(parts: Sequence[TableRows]) -> pd.DataFrame:
        """One frame of the rows of ``parts``, in order: numeric columns float64 with NaN for null (as an empty CSV
        cell of a numeric column reads), the others object."""
        data: dict[ColumnName, Any] = {}
        for name in parts[0].columns:
            values = [value for part in parts for value in part.columns[name]]
            if name in parts[0].numeric:
                data[name] = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
            else:
                data[name] = pd.Series(values, dtype=object)
        return pd.DataFrame(data)


def parse_rows(
    payload: Mapping[str, Any], row_columns: Sequence[Any], *, image: tuple[str, ImageSpec] | None = None
) -> TableRows:
    """The ``rows`` of a table request, checked to hold the model's feature columns.

    Each feature takes what its kind reads (null everywhere: missing, filled in as a CSV's empty cell): a numeric one
    a number, a boolean one true/false, 0/1 or a yes/no string, a date one a date string, a categorical one a
    string, number or boolean, a text one a string (``row_columns``: `labelwise.inputs.Inputs.row_columns`).
    Missing features and values of the wrong kind are all reported; other fields, and the columns the model leaves
    out (an identifier), are ignored, as `labelwise predict` ignores other columns.
    A model that also reads an image column (``image``: its name and spec) takes it as a base64 string per row;
    `TableRows` holds its decoded bytes.
    """
    rows = _items(payload, "rows", other="images")
    numeric = {str(spec.name) for spec in row_columns if isinstance(spec, NumericColumn)}
    read = [column.name for column in row_columns if column.width]
    names = {str(name): name for name in [*read, *([image[0]] if image else [])]}
    problems = _shape_problems(rows, names)
    if problems:
        raise RequestError(
            f"{'; '.join(problems)}. Expected every row to hold the features {_names(names)} (other fields are "
            "ignored); add the missing ones (null for a missing value)."
        )
    _check_types(rows, {str(spec.name): spec.kind for spec in row_columns if spec.width})
    columns = {column: [row[name] for row in rows] for name, column in names.items()}
    if image is not None:
        name, spec = image
        labels = [f"rows[{i}][{name!r}]" for i in range(len(rows))]
        columns[name] = [item.data for item in _decode_base64(columns[name], labels, spec)]
    return TableRows(columns, frozenset(names[name] for name in numeric), len(rows))


def _decode_base64(values: Sequence[Any], labels: Sequence[str], spec: ImageSpec) -> list[ImageItem]:
    """Each base64 value (optionally a ``data:`` URL) as an `ImageItem` with its position as id, checked to decode;
    ``labels`` name the values in the message."""
    decoded: list[ImageItem] = []
    bad: list[str] = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        try:
            decoded.append(ImageItem(str(i), _base64(value)))
        except RequestError as err:
            bad.append(f"{label}: {err}")
    check_images(decoded, spec, labels=[labels[int(item.id)] for item in decoded], bad=bad)
    return decoded


def _shape_problems(rows: Sequence[Any], names: Mapping[str, Any]) -> list[str]:
    """Rows that are not objects, or lack features; a field the model does not read is ignored, as `labelwise
    predict` ignores a column it was not trained on (an id, the label), but named when it looks like the missing one."""
    not_objects = [i for i, row in enumerate(rows) if not isinstance(row, dict)]
    if not_objects:
        return [f"{_where('rows', not_objects)} not JSON object(s) of features"]
    missing: dict[str, list[int]] = {}
    typos: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        lacked = names.keys() - row.keys()
        extra = [str(name) for name in row.keys() - names.keys()]
        for name in lacked:
            missing.setdefault(name, []).append(i)
            typos.setdefault(name, set()).update(_close_names(name, extra))
    shown = {name: repr(name) + _did_you_mean(sorted(typos[name])) for name in missing}
    found = [f"{_where('rows', at)} lack(s) feature(s) {names}" for at, names in _by_rows(missing, shown)]
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
            problems.append(f"{kind} feature {name!r} is {shown} in {_where('rows', bad)}; expected {expected} or null")
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
    return bool(pd.notna(pd.to_datetime(value, errors="coerce", format="mixed")))


# What a feature of each kind takes in JSON, and how a refusal says so.
_KIND_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "numeric": (_is_finite_number, "a finite number"),
    "categorical": (_is_category, "a string, number or boolean"),
    "boolean": (_is_boolean, "true/false, 1/0 or a yes/no string"),
    "datetime": (_is_date, "a date string such as '2024-03-01'"),
    "text": (lambda value: isinstance(value, str), "a string"),
}


def parse_images(payload: Mapping[str, Any], spec: ImageSpec) -> list[ImageItem]:
    """The ``images`` of a JSON request (base64 strings, optionally ``data:`` URLs), each checked to decode."""
    items = _items(payload, "images", other="rows")
    return _decode_base64(items, [f"images[{i}]" for i in range(len(items))], spec)


def _base64(item: Any) -> bytes:
    if not isinstance(item, str):
        raise RequestError(f"a JSON {_json_type(item)}, expected a base64 string")
    text = item.split(",", 1)[1] if item.startswith("data:") and "," in item else item
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("not valid base64") from None


def check_images(
    items: Sequence[ImageItem], spec: ImageSpec, *, labels: Sequence[str] | None = None, bad: list[str] | None = None
) -> None:
    """Decode each image once, as prediction will, so that an undecodable one is named before any model call.

    ``labels`` name the items in the message (default: their ids); ``bad`` holds problems found before decoding.
    """
    bad = list(bad or [])
    for item, label in zip(items, labels or [item.id for item in items], strict=True):
        try:
            decode_image_bytes(item.data, spec)
        except DataError as err:
            bad.append(f"{label}: {str(err).split(';')[0]}")
    if bad:
        more = f"; and {len(bad) - _MAX_SHOWN} more" if len(bad) > _MAX_SHOWN else ""
        raise RequestError(f"{len(bad)} image(s) cannot be used: {'; '.join(bad[:_MAX_SHOWN])}{more}.")


def _where(field: str, indices: Sequence[int]) -> str:
    shown = ", ".join(f"{field}[{i}]" for i in indices[:_MAX_SHOWN])
    return shown + (f" and {len(indices) - _MAX_SHOWN} more" if len(indices) > _MAX_SHOWN else "")


def _names(names: Mapping[str, Any]) -> str:
    listed = list(names)
    return ", ".join(repr(n) for n in listed[:20]) + (f" and {len(listed) - 20} more" if len(listed) > 20 else "")


def _json_type(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _short(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:200] + "..."
