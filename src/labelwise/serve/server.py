"""Run the app under uvicorn on a socket we bind ourselves, and stop it gracefully on SIGTERM or Ctrl-C.

Binding first turns a port in use into our one-line `ConfigError` (uvicorn would log and ``sys.exit(1)``), and lets
``--port 0`` pick a free port whose number we can announce.
"""

from __future__ import annotations

import contextlib
import errno
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from labelwise.errors import ConfigError
from labelwise.serve.app import create_app

__all__ = ["bind_socket", "parse_size", "serve"]

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_GRACEFUL_TIMEOUT_S = 30  # in-flight requests get this long to finish after SIGTERM


def parse_size(text: str) -> int:
    """A byte count written as ``4000000``, ``4MB`` (10^6) or ``4MiB`` (2^20).

    Example:
        >>> parse_size("4MB"), parse_size("512KiB"), parse_size("2048")
        (4000000, 524288, 2048)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(f"--max-body {text!r}; expected a size such as 4MB, 512KiB or 1000000 (bytes).")
    return int(float(match.group(1)) * _UNITS[unit])


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one).

    Raises:
        ConfigError: the port is in use or not allowed, or the host is not an address of this machine.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port {port!r}; expected a port number in [0, 65535] (0 picks a free one).")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ConfigError(
            f"--host {host!r} cannot be resolved ({err.strerror}); pass an address such as 127.0.0.1."
        ) from err
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a server restarted at once may rebind
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ConfigError(_bind_message(host, port, err)) from err
    return sock


def _bind_message(host: str, port: int, err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use by another process; stop it, or pass another --port "
            "(--port 0 picks a free one)."
        )
    if err.errno == errno.EACCES:
        return f"no permission to listen on port {port} on {host}; pass a --port above 1023."
    return f"cannot listen on {host}:{port} ({err.strerror}); pass another --host or --port."


def serve(
    clf: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 64,
    max_wait_ms: float = 5.0,
    max_body: int = 4 * 1024 * 1024,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``clf`` until SIGTERM or Ctrl-C; in-flight requests finish first.

    Args:
        clf: the loaded classifier (`labelwise.load`), or an exported one (`labelwise.export.load_onnx`).
        host: address to listen on.
        port: port to listen on; 0 picks a free one.
        max_batch: most items in one model call.
        max_wait_ms: longest a request waits, from its arrival, to share a model call.
        max_body: largest request body in bytes.
        on_ready: called with the server's URL once the socket listens.

    Raises:
        ConfigError: an option out of range, or the address cannot be listened on.
    """
    app = create_app(clf, max_batch=max_batch, max_wait_ms=max_wait_ms, max_body=max_body)
    sock = bind_socket(host, port)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=_GRACEFUL_TIMEOUT_S, lifespan="on"
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(f"http://{shown}:{bound[1]}")
    with sock, _signals_end_quietly():
        server.run(sockets=[sock])


@contextlib.contextmanager
def _signals_end_quietly() -> Iterator[None]:
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler it found: with the
    # default ones the process would die by SIGTERM (or raise KeyboardInterrupt) after a clean drain. A handler
    # that does nothing makes a drained shutdown an ordinary return, exit code 0.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: object) -> None:
    """Signal handler that does nothing (see `_signals_end_quietly`)."""
