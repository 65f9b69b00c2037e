"""The HTTP JSON API of a trained classifier: ``POST /predict``, ``GET /health``, ``GET /metadata``.

Built on FastAPI (Starlette) routes that take the raw request, so that size limits, JSON parsing and error
bodies are ours: every error is ``{"error": "<one line>"}`` with 400 (bad request), 413 (body too large), 404/405
(no such route), or 500 (a bug, logged here with its traceback, never sent to the client).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from labelwise.classifier import Classifier
from labelwise.errors import ConfigError, DataError, LabelError
from labelwise.serve.batching import MicroBatcher
from labelwise.serve.bodies import (
    ImageItem,
    RequestError,
    check_images,
    parse_images,
    parse_json,
    parse_rows,
    read_body,
)
from labelwise.serve.predicting import json_safe, predict_images, predict_tables

__all__ = ["DEFAULT_MAX_BODY", "create_app", "serving_metadata"]

DEFAULT_MAX_BODY = 4 * 1024 * 1024
_log = logging.getLogger("labelwise.serve")


def create_app(
    clf: Classifier, *, max_batch: int = 64, max_wait_ms: float = 5.0, max_body: int = DEFAULT_MAX_BODY
) -> FastAPI:
    """A FastAPI app serving ``clf``; requests are batched across clients up to ``max_batch`` items.

    Args:
        clf: the loaded classifier.
        max_batch: most items (rows or images) in one model call.
        max_wait_ms: longest a request waits for others to share its model call.
        max_body: largest request body in bytes; a larger one gets 413.

    Raises:
        ConfigError: an option out of range.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> import labelwise, pandas as pd
        >>> frame = pd.DataFrame({"x": [0.0, 1.0] * 20, "y": ["a", "b"] * 20})
        >>> config = labelwise.TrainConfig(epochs=1)
        >>> clf = labelwise.fit(frame, target="y", config=config, progress=False)  # doctest: +SKIP
        >>> with TestClient(create_app(clf)) as client:  # doctest: +SKIP
        ...     client.post("/predict", json={"rows": [{"x": 1.0}]}).json()["predictions"][0]["prediction"]
        'b'
    """
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1024:
        raise ConfigError(f"max_body={max_body!r}; expected a number of bytes >= 1024, e.g. 4MB (--max-body).")
    batcher: MicroBatcher[Any] = MicroBatcher(_runner(clf), max_batch=max_batch, max_wait_ms=max_wait_ms)
    metadata = serving_metadata(clf, max_batch=max_batch, max_wait_ms=max_wait_ms, max_body=max_body)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.stop()  # after the server's graceful shutdown has let in-flight requests finish

    app = FastAPI(title="labelwise", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    app.add_exception_handler(StarletteHTTPException, _http_error)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        return metadata

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            job, size = await _parse(request, clf, max_body=max_body)
            return JSONResponse({"predictions": await batcher.submit(job, size=size)})
        except RequestError as err:
            return _error(err.status, str(err))
        except (DataError, LabelError) as err:  # values the model path refused (checked per request by the batcher)
            return _error(400, str(err))
        except Exception:  # noqa: BLE001 - a bug: logged with its traceback here, one generic line to the client
            _log.exception("POST /predict failed")
            return _error(500, "internal error while predicting; the server log has the details.")

    return app


def _runner(clf: Classifier) -> Any:
    """What predicts a batch of requests: rows (of features, and images too for a run that reads both), or images."""
    if not clf.inputs.row_columns:
        return lambda jobs: predict_images(clf, jobs)
    return lambda jobs: predict_tables(clf, jobs)


async def _parse(request: Request, clf: Classifier, *, max_body: int) -> tuple[Any, int]:
    """The request's job for the batcher (a frame of rows, or a list of images) and its number of items."""
    body = await read_body(request.stream(), content_length=request.headers.get("content-length"), limit=max_body)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    image, table = clf.inputs.image, clf.inputs.row_columns or None
    if content_type == "multipart/form-data":
        if image is None or table is not None:
            reads = "rows of features" + (f" with {image.name!r} as base64" if image else "")
            raise RequestError(f"multipart uploads are for image models; this model reads {reads} as JSON.")
        images = await _multipart_images(request, body)
        await asyncio.to_thread(check_images, images, image.spec)
        return images, len(images)
    if content_type not in ("application/json", "text/json") and not content_type.endswith("+json"):
        raise RequestError(f"Content-Type is {content_type!r}; expected application/json (or multipart/form-data).")
    payload = parse_json(body)
    if table is not None and image is None:
        rows = parse_rows(payload, table)
        return rows, rows.num_rows
    if table is not None and image is not None:  # rows with a base64 image each: decoding them is slow, off the loop
        rows = await asyncio.to_thread(parse_rows, payload, table, image=(str(image.name), image.spec))
        return rows, rows.num_rows
    assert image is not None  # noqa: S101 - inputs hold a table, an image column, or both
    items = await asyncio.to_thread(parse_images, payload, image.spec)
    return items, len(items)


async def _multipart_images(request: Request, body: bytes) -> list[ImageItem]:
    async def replay() -> dict[str, Any]:  # the body was already read (under the size limit): parse that copy
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, receive=replay).form(max_files=100_000, max_fields=1000)
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


def serving_metadata(clf: Classifier, *, max_batch: int, max_wait_ms: float, max_body: int) -> dict[str, Any]:
    """What ``GET /metadata`` answers: task, classes, inputs, decision policy, calibration, versions, metrics."""
    info = clf.info
    metadata: dict[str, Any] = json_safe(
        {
            "task": clf.task.to_dict(),
            "kind": str(clf.task.kind),
            "classes": list(clf.task.classes),
            "inputs": _inputs(clf),
            "decision": clf.policy.to_dict(),
            "calibration": clf.calibration.to_dict(),
            "metrics": info.get("metrics", {}),
            "versions": info.get("versions", {}),
            "target": info.get("target"),
            "serving": {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_body": max_body},
        }
    )
    return metadata


def _inputs(clf: Classifier) -> dict[str, Any]:
    image, table = clf.inputs.image, clf.inputs.row_columns
    if table:
        features: list[dict[str, Any]] = [{"name": str(spec.name), "type": spec.kind} for spec in table if spec.width]
        row = {"<feature>": "<value>"}
        if image is not None:  # a run that reads an image column too: one base64 image per row
            features.append({"name": str(image.name), "type": "image", "spec": image.spec.to_dict()})
            row[str(image.name)] = "<base64>"
        return {"type": "table", "features": features, "body": {"rows": [row]}}
    assert image is not None  # noqa: S101 - inputs hold a table, an image column, or both
    return {"type": "images", "spec": image.spec.to_dict(), "body": {"images": ["<base64>"]}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    detail = getattr(exc, "detail", "error")
    status = getattr(exc, "status_code", 500)
    routes: Sequence[str] = ("POST /predict", "GET /health", "GET /metadata")
    return _error(status, f"{request.method} {request.url.path}: {detail}; this server answers {', '.join(routes)}.")
