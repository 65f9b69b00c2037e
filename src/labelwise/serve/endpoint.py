"""``POST /predict`` as a bare ASGI app: read the body, check it, wait for the batch, answer JSON.

FastAPI's request handling (its middleware stack and router, the endpoint wrapper with a `Request` and a
`JSONResponse`) cost about 70 us a request, more than a batched model call per row; this endpoint reads the ASGI
messages itself, and the app hands ``POST /predict`` straight to it (`labelwise.serve.app`). Size limits, JSON
parsing and error bodies stay ours: every error is ``{"error": "<one line>"}`` with 400 (bad request), 413 (body
too large), or 500 (a bug, logged here with its traceback, never sent to the client).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from labelwise.errors import DataError, LabelError
from labelwise.serve.batching import MicroBatcher
from labelwise.serve.bodies import ImageItem, RequestError, check_images, parse_images, parse_json, read_body
from labelwise.serve.rows import RowReader

__all__ = ["PredictEndpoint", "error_body"]

_log = logging.getLogger("labelwise.serve")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Disconnected(Exception):
    """The client closed the connection before its body was read: nobody is left to answer."""


class PredictEndpoint:
    """The ASGI app of ``POST /predict`` for a model reading rows (``reader``) or images (``image``).

    Args:
        batcher: runs the checked requests' jobs in batches.
        reader: reads the rows of a table run (None for an image run).
        image: the image column of a run that reads images, else None.
        max_body: largest body in bytes; a larger one gets 413.
    """

    def __init__(self, batcher: MicroBatcher[Any], *, reader: RowReader | None, image: Any, max_body: int) -> None:
        self._batcher = batcher
        self._reader = reader
        self._image = image
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content: dict[str, Any]
        try:
            job, size = await self._parse(scope, receive)
            status, content = 200, {"predictions": await self._batcher.submit(job, size=size)}
        except _Disconnected:
            return
        except RequestError as err:
            status, content = err.status, error_body(str(err))
        except (DataError, LabelError) as err:  # values the model path refused (checked per request by the batcher)
            status, content = 400, error_body(str(err))
        except Exception:  # noqa: BLE001 - a bug: logged with its traceback here, one generic line to the client
            _log.exception("POST /predict failed")
            status, content = 500, error_body("internal error while predicting; the server log has the details.")
        await send_json(send, status, content)

    async def _parse(self, scope: Scope, receive: Receive) -> tuple[Any, int]:
        """The request's job for the batcher (`TableRows`, or a list of images) and its number of items."""
        length, content_type = _headers(scope)
        body = await read_body(_chunks(receive), content_length=length, limit=self._max_body)
        content_type = content_type.split(";")[0].strip().lower()
        reader, image = self._reader, self._image
        if content_type == "multipart/form-data":
            if image is None or reader is not None:
                reads = "rows of features" + (f" with {image.name!r} as base64" if image else "")
                raise RequestError(f"multipart uploads are for image models; this model reads {reads} as JSON.")
            images = await asyncio.to_thread(check_images, await _multipart_images(scope, body), image.spec)
            return images, len(images)
        if content_type not in ("application/json", "text/json") and not content_type.endswith("+json"):
            raise RequestError(f"Content-Type is {content_type!r}; expected application/json (or multipart/form-data).")
        payload = parse_json(body)
        if reader is not None and image is None:
            rows = reader.read(payload)
            return rows, rows.num_rows
        if reader is not None:  # rows with a base64 image each: decoding them is slow, off the loop
            rows = await asyncio.to_thread(reader.read, payload)
            return rows, rows.num_rows
        items = await asyncio.to_thread(parse_images, payload, image.spec)
        return items, len(items)


def _headers(scope: Scope) -> tuple[str | None, str]:
    """The request's Content-Length (None without one) and Content-Type (default JSON); the first of each."""
    length: str | None = None
    content_type: str | None = None
    for name, value in scope["headers"]:
        if name == b"content-length" and length is None:
            length = value.decode("latin-1")
        elif name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
    return length, content_type or "application/json"


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as the server hands them over."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _multipart_images(scope: Scope, body: bytes) -> list[ImageItem]:
    async def replay() -> dict[str, Any]:  # the body was already read (under the size limit): parse that copy
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, receive=replay).form(max_files=100_000, max_fields=1000)
    except Exception as err:  # noqa: BLE001 - the multipart parser raises several types on a malformed body
        raise RequestError(f"the multipart body cannot be parsed ({' '.join(str(err).split())[:200]}).") from None
    images: list[ImageItem] = []
    fields: list[str] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            images.append(ImageItem(value.filename or f"{name}[{len(images)}]", await value.read()))
        else:
            fields.append(name)
    await form.close()
    if fields:
        raise RequestError(f"multipart field(s) {', '.join(map(repr, fields[:5]))} are not files; send image files.")
    if not images:
        raise RequestError("the multipart body holds no files; send one file part per image.")
    return images


def error_body(message: str) -> dict[str, str]:
    """The JSON of an error answer: the message on one line."""
    return {"error": " ".join(message.split())}


async def send_json(send: Send, status: int, content: Any) -> None:
    """Answer ``content`` as JSON, encoded as Starlette's `JSONResponse` encodes it."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("latin-1"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
