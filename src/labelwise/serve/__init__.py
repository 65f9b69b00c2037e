"""Serve a trained classifier over HTTP: ``labelwise serve RUN`` (needs ``pip install "labelwise[serve]"``).

`create_app` builds the FastAPI app (``POST /predict``, ``GET /health``, ``GET /metadata``) with requests batched
across clients; `serve` runs it under uvicorn on a socket bound first, and drains in-flight requests on SIGTERM.
The model is a `labelwise.Classifier` or an exported one (`labelwise.export.load_onnx`, ``serve --backend onnx``):
an exported table run is served without importing torch.
"""

from __future__ import annotations

from labelwise.serve.app import DEFAULT_MAX_BODY as DEFAULT_MAX_BODY
from labelwise.serve.app import create_app as create_app
from labelwise.serve.app import serving_metadata as serving_metadata
from labelwise.serve.batching import MicroBatcher as MicroBatcher
from labelwise.serve.server import bind_socket as bind_socket
from labelwise.serve.server import parse_size as parse_size
from labelwise.serve.server import serve as serve

__all__ = ["DEFAULT_MAX_BODY", "MicroBatcher", "bind_socket", "create_app", "parse_size", "serve", "serving_metadata"]
