"""Read and check the body of ``POST /predict``: its size, its JSON, its images (`labelwise.serve.rows` reads rows).

Everything here answers a client mistake with a `RequestError` (400, or 413 for a body over the limit) whose
one-line message names the field; nothing a client sends reaches the model unchecked.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from labelwise.data.images import ImageSpec, decode_image_bytes
from labelwise.errors import DataError, format_examples

__all__ = [
    "ImageItem",
    "RequestError",
    "check_images",
    "decode_base64",
    "items_of",
    "parse_images",
    "parse_json",
    "read_body",
    "where",
]

_MAX_SHOWN = 5
_DRAIN_FACTOR = 8  # an oversize body is read (and dropped) up to this many limits, so the client sees the 413


class RequestError(DataError):
    """A request the server refuses; ``status`` is the HTTP status code (400 or 413)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImageItem:
    """One image of a request: its id in the response, the bytes of its file, and once checked, its pixels
    ``(C, size, size)`` uint8 as ``predict`` decodes the file (`decode_image_bytes`)."""

    id: str
    data: bytes
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)


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


def items_of(payload: Mapping[str, Any], key: str, *, other: str) -> list[Any]:
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


def decode_base64(values: Sequence[Any], labels: Sequence[str], spec: ImageSpec) -> list[ImageItem]:
    """Each base64 value (optionally a ``data:`` URL) as an `ImageItem` with its position as id, checked to decode;
    ``labels`` name the values in the message."""
    decoded: list[ImageItem] = []
    bad: list[str] = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        try:
            decoded.append(ImageItem(str(i), _base64(value)))
        except RequestError as err:
            bad.append(f"{label}: {err}")
    return check_images(decoded, spec, labels=[labels[int(item.id)] for item in decoded], bad=bad)


def parse_images(payload: Mapping[str, Any], spec: ImageSpec) -> list[ImageItem]:
    """The ``images`` of a JSON request (base64 strings, optionally ``data:`` URLs), each checked to decode."""
    items = items_of(payload, "images", other="rows")
    return decode_base64(items, [f"images[{i}]" for i in range(len(items))], spec)


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
) -> list[ImageItem]:
    """The items with their pixels: each image decoded once, as prediction would, so that an undecodable one is
    named before any model call, and none is decoded twice.

    ``labels`` name the items in the message (default: their ids); ``bad`` holds problems found before decoding.
    """
    bad = list(bad or [])
    checked = []
    for item, label in zip(items, labels or [item.id for item in items], strict=True):
        try:
            checked.append(replace(item, pixels=decode_image_bytes(item.data, spec)))
        except DataError as err:
            bad.append(f"{label}: {str(err).split(';')[0]}")
    if bad:
        more = f"; and {len(bad) - _MAX_SHOWN} more" if len(bad) > _MAX_SHOWN else ""
        raise RequestError(f"{len(bad)} image(s) cannot be used: {'; '.join(bad[:_MAX_SHOWN])}{more}.")
    return checked


def where(field: str, indices: Sequence[int]) -> str:
    shown = ", ".join(f"{field}[{i}]" for i in indices[:_MAX_SHOWN])
    return shown + (f" and {len(indices) - _MAX_SHOWN} more" if len(indices) > _MAX_SHOWN else "")


def _json_type(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _short(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:200] + "..."
