"""The HTTP JSON API of a trained classifier: ``POST /predict``, ``GET /health``, ``GET /metadata``.

Built on FastAPI (Starlette): ``POST /predict`` is a bare ASGI app (`labelwise.serve.endpoint`) which the app calls
before its middleware and router, the others FastAPI routes. Every error is ``{"error": "<one line>"}`` with 400
(bad request), 413 (body too large), 404/405 (no such route), or 500 (a bug, logged with its traceback, never sent
to the client).

``clf`` is a `labelwise.Classifier`, or what `labelwise.export.load_onnx` loads (``serve --backend onnx``); for an
exported table run nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from labelwise.errors import ConfigError
from labelwise.serve.batching import MicroBatcher
from labelwise.serve.endpoint import PredictEndpoint, error_body
from labelwise.serve.predicting import batch_runner, json_safe
from labelwise.serve.rows import RowReader

__all__ = ["DEFAULT_MAX_BODY", "create_app", "serving_metadata"]

DEFAULT_MAX_BODY = 4 * 1024 * 1024


def create_app(clf: Any, *, max_batch: int = 64, max_wait_ms: float = 5.0, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    """A FastAPI app serving ``clf``; requests are batched across clients up to ``max_batch`` items.

    Args:
        clf: the loaded classifier: a `labelwise.Classifier`, or an exported one (`labelwise.export.load_onnx`).
        max_batch: most items (rows or images) in one model call.
        max_wait_ms: longest a request waits, from its arrival, for others to share its model call.
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
    image = getattr(clf.inputs, "image", None)
    reader = None
    if clf.inputs.row_columns:  # rows of features, with a base64 image each for a run that also reads images
        reader = RowReader(clf.inputs.row_columns, image=None if image is None else (str(image.name), image.spec))
    batcher: MicroBatcher[Any] = MicroBatcher(batch_runner(clf, reader), max_batch=max_batch, max_wait_ms=max_wait_ms)
    metadata = serving_metadata(clf, max_batch=max_batch, max_wait_ms=max_wait_ms, max_body=max_body)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.stop()  # after the server's graceful shutdown has let in-flight requests finish

    endpoint = PredictEndpoint(batcher, reader=reader, image=image, max_body=max_body)
    app = _App(endpoint, title="labelwise", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.router.routes.append(Route("/predict", endpoint, methods=["POST"]))  # what `_App` skips to, and 405s

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        return metadata

    return app


class _App(FastAPI):
    """FastAPI, with ``POST /predict`` handed straight to its endpoint.

    The endpoint answers every error itself, so Starlette's middleware stack and router in front of it (about
    25 us a request, an eighth of the server's work on a small table model) only pass the request along.
    """

    def __init__(self, predict: PredictEndpoint, **options: Any) -> None:
        super().__init__(**options)
        self._predict = predict

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict" and scope["method"] == "POST":
            await self._predict(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def serving_metadata(clf: Any, *, max_batch: int, max_wait_ms: float, max_body: int) -> dict[str, Any]:
    """What ``GET /metadata`` answers: task, classes, inputs, decision policy, calibration, versions, metrics."""
    stored = clf.metadata()  # the run's labelwise.json, for a run loaded from an ONNX file too
    metadata: dict[str, Any] = json_safe(
        {
            "task": stored["task"],
            "kind": str(clf.task.kind),
            "classes": list(clf.task.classes),
            "inputs": _inputs(clf),
            "decision": stored["decision"],
            "calibration": stored["calibration"],
            "metrics": stored.get("metrics", {}),
            "versions": stored.get("versions", {}),
            "target": stored.get("target"),
            "serving": {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_body": max_body},
        }
    )
    return metadata


def _inputs(clf: Any) -> dict[str, Any]:
    image, table = getattr(clf.inputs, "image", None), clf.inputs.row_columns
    if table:
        features: list[dict[str, Any]] = [{"name": str(spec.name), "type": spec.kind} for spec in table if spec.width]
        row = {"<feature>": "<value>"}
        if image is not None:  # a run that reads an image column too: one base64 image per row
            features.append({"name": str(image.name), "type": "image", "spec": image.spec.to_dict()})
            row[str(image.name)] = "<base64>"
        return {"type": "table", "features": features, "body": {"rows": [row]}}
    assert image is not None  # noqa: S101 - inputs hold a table, an image column, or both
    return {"type": "images", "spec": image.spec.to_dict(), "body": {"images": ["<base64>"]}}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    detail = getattr(exc, "detail", "error")
    status = getattr(exc, "status_code", 500)
    routes: Sequence[str] = ("POST /predict", "GET /health", "GET /metadata")
    message = f"{request.method} {request.url.path}: {detail}; this server answers {', '.join(routes)}."
    return JSONResponse(error_body(message), status_code=status)
