"""Load test of ``labelwise serve`` on loopback: throughput, latency, server CPU, memory, decisions, bad requests.

Trains a small model, starts ``labelwise serve RUN --port 0`` as a subprocess on 127.0.0.1, then:

1. sends ``--requests`` single-item ``POST /predict`` requests from ``--concurrency`` clients, each on its own
   keep-alive connection, and reports errors, p50/p99 latency, requests/s, the server's CPU per request (from
   /proc/<pid>/stat: the server's share of the machine, whatever the client costs), and its resident memory
   (VmRSS) after the first 1,000 requests and at the end. Every answer's decision is checked against what
   ``labelwise predict`` (same ``--backend``) writes for the same item;
2. for the table model, sends 100 malformed and oversize requests (10 kinds, 10 each) and checks that every one
   gets 400 or 413 and that ``GET /health`` still answers ok; then SIGTERM, which must end the server with 0.

``--model cancer`` (default): scikit-learn's breast cancer, 30 numeric features, binary; one row per request.
``--model digits``: the ``digits`` demo's 32x32 grayscale PNGs, 10 classes, the default CNN; one base64 PNG per
request (images/s = requests/s). ``--backend onnx`` exports the run and serves ``RUN/model.onnx``.

The client runs in this process, on the same cores as the server. It is a bare asyncio HTTP/1.1 client (uvloop
when installed), which costs about a tenth of the server's CPU per request; ``--client httpx`` uses one
httpx.AsyncClient instead, as this benchmark did before: at these rates httpx takes more CPU than the server, and
the numbers then measure the client.

``--compare-src DIR`` first runs the same load against a server started from another checkout's ``src`` (the code
before a change: ``git archive main src | tar -x -C DIR``) on the same run, with the torch backend (the code before
had no other) and without uvloop and httptools (which the serve extra did not install before), so that before and
after are measured in one run, under the same load from other work on the machine. ``--no-uvloop`` hides them from
the server measured too.

``--profile PREFIX`` samples each server with py-spy (``pip install py-spy``) into ``PREFIX-<which>.txt`` and adds
where its CPU went, per request, by stage (`_STAGES`); the sampling slows the server, so take throughput from a
run without it.

    python benchmarks/serve_load.py
    python benchmarks/serve_load.py --backend onnx
    python benchmarks/serve_load.py --model digits --requests 2000
    python benchmarks/serve_load.py --compare-src /tmp/serve-base/src --profile /tmp/serve
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_WARMUP = 1000  # memory is compared against the server after this many requests (caches and pools warmed up)
_HIDE = "raise ImportError('hidden by benchmarks/serve_load.py')\n"  # uvloop.py / httptools.py for a plain server


def _train_cancer(folder: Path) -> tuple[Path, list[bytes], list[str], Path]:
    """The run, one JSON body per row, each row's ``id`` in predictions.csv, and the rows as a CSV for it."""
    import sklearn.datasets

    import labelwise
    from labelwise.train import TrainConfig

    data = sklearn.datasets.load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: str(c).replace(" ", "_"))
    run = folder / "run"
    labelwise.fit(frame, target="target", config=TrainConfig(epochs=5, seed=0), progress=False, out=run)
    features = frame.drop(columns="target")
    features.to_csv(folder / "rows.csv", index=False)
    rows = features.to_dict(orient="records")
    bodies = [json.dumps({"rows": [{k: float(v) for k, v in row.items()}]}).encode() for row in rows]
    return run, bodies, [str(i) for i in range(len(rows))], folder / "rows.csv"


def _train_digits(folder: Path) -> tuple[Path, list[bytes], list[str], Path]:
    """The run, one JSON body per test image, each image's ``id`` in predictions.csv, and the folder of them."""
    import labelwise
    from labelwise.datasets import make_demo
    from labelwise.train import TrainConfig

    demo = make_demo("digits", folder, seed=0)
    run = folder / "run"
    labelwise.fit(demo.train, config=TrainConfig(epochs=3, seed=0), progress=False, out=run)
    test = Path(demo.test)
    files = sorted(test.rglob("*.png"))
    bodies = [json.dumps({"images": [base64.b64encode(f.read_bytes()).decode()]}).encode() for f in files]
    return run, bodies, [f.relative_to(test).as_posix() for f in files], test


def _expected(run: Path, data: Path, ids: list[str], *, backend: str, folder: Path) -> list[str]:
    """The ``prediction`` ``labelwise predict`` writes for each of ``ids``."""
    import pandas as pd

    from labelwise.cli import main

    out = folder / f"predictions-{backend}.csv"
    assert main(["predict", str(run), str(data), "--out", str(out), "--backend", backend]) == 0
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    by_id = dict(zip(frame["id"], frame["prediction"], strict=True))
    return [by_id[i] for i in ids]


def _start(
    run: Path, args: argparse.Namespace, *, src: str | None, folder: Path, profile: str | None
) -> tuple[subprocess.Popen[str], int, str]:
    """The process started (py-spy's, when profiling), the server's pid, and its URL."""
    command = [sys.executable, "-m", "labelwise", "serve", str(run), "--host", "127.0.0.1", "--port", "0",
               "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]  # fmt: skip
    env = dict(os.environ)
    if args.backend == "onnx":
        command += ["--backend", "onnx"]
    if profile is not None:
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "-o", profile, "-f", "raw", "--threads", "-r", "200", "--", *command]
    if src is not None or args.no_uvloop:  # a plain asyncio + h11 server, as the serve extra installed before
        hidden = folder / "hidden"
        hidden.mkdir(exist_ok=True)
        for name in ("uvloop.py", "httptools.py"):
            (hidden / name).write_text(_HIDE)
        code = src or str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = os.pathsep.join([str(hidden), code])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    line = process.stderr.readline()
    while line.startswith("py-spy>") or not line.strip():  # py-spy's own lines come first when profiling
        line = process.stderr.readline()
    if " at http://" not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line}{process.stderr.read()}")
    url = line.split(" at ")[1].split()[0]
    pid = process.pid
    if profile is not None:  # the server is py-spy's child
        pid = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
    for _ in range(400):
        try:
            status, _ = asyncio.run(_get(url, "/health"))
            if status == 200:
                return process, pid, url
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url}/health never answered")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: the server's share of the machine, apart from the client's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request at a time, answers framed by Content-Length."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if self.waiter is None or end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self.waiter.set_exception(ConnectionError(f"no Content-Length in {head[:200]!r}"))
            return
        stop = head.find(b"\r\n", at + 2)
        total = end + 4 + int(head[at + 17 : stop if stop > 0 else None])
        if len(self.buffer) >= total:
            answer = (int(head[9:12]), bytes(self.buffer[end + 4 : total]))
            del self.buffer[:total]
            waiter, self.waiter = self.waiter, None
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def _post(url: str, body: bytes) -> bytes:
    host = url.split("//")[1]
    head = f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


async def _connect(url: str) -> _Connection:
    host, port = url.split("//")[1].rsplit(":", 1)
    _, connection = await asyncio.get_running_loop().create_connection(_Connection, host, int(port))
    return connection


async def _get(url: str, path: str) -> tuple[int, bytes]:
    connection = await _connect(url)
    try:
        return await connection.send(f"GET {path} HTTP/1.1\r\nHost: {url.split('//')[1]}\r\n\r\n".encode())
    finally:
        assert connection.transport is not None
        connection.transport.close()


async def _load(url: str, bodies: list[bytes], expected: list[str], *, total: int, concurrency: int) -> dict[str, Any]:
    requests = [_post(url, body) for body in bodies]
    latencies: list[float] = []
    errors: list[str] = []
    differing = 0
    counter = iter(range(total))
    connections = [await _connect(url) for _ in range(concurrency)]

    async def client(connection: _Connection) -> None:
        nonlocal differing
        for i in counter:  # shared iterator: the clients together send exactly `total` requests
            k = i % len(requests)
            start = time.perf_counter()
            try:
                status, answer = await connection.send(requests[k])
                predictions = json.loads(answer).get("predictions") if status == 200 else None
                if predictions is None or len(predictions) != 1:
                    errors.append(f"{status} {answer[:200]!r}")
                elif predictions[0]["prediction"] != expected[k]:
                    differing += 1
            except ConnectionError as err:
                errors.append(str(err))
                return
            latencies.append(time.perf_counter() - start)

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(connection) for connection in connections))
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    for connection in connections:
        assert connection.transport is not None
        connection.transport.close()
    return {"latencies": latencies, "errors": errors, "differing": differing, "seconds": seconds, "client_cpu": cpu}


async def _load_httpx(
    url: str, bodies: list[bytes], expected: list[str], *, total: int, concurrency: int
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    differing = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal differing
            for i in counter:
                k = i % len(bodies)
                start = time.perf_counter()
                try:
                    response = await client.post("/predict", content=bodies[k], headers=headers)
                    if response.status_code != 200 or len(response.json()["predictions"]) != 1:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                    elif response.json()["predictions"][0]["prediction"] != expected[k]:
                        differing += 1
                except httpx.HTTPError as err:
                    errors.append(f"{type(err).__name__}: {err}")
                latencies.append(time.perf_counter() - start)

        began, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"latencies": latencies, "errors": errors, "differing": differing, "seconds": seconds, "client_cpu": cpu}


def _bad_requests(max_body: int) -> list[tuple[str, dict[str, Any]]]:
    good = {"mean_radius": 1.0}
    json_type = {"content-type": "application/json"}
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("malformed-json", {"content": b'{"rows": [', "headers": json_type}),
        ("not-an-object", {"content": b"[1,2,3]", "headers": json_type}),
        ("no-rows", {"json": {"row": [good]}}),
        ("empty-rows", {"json": {"rows": []}}),
        ("missing-features", {"json": {"rows": [good]}}),
        ("text-for-number", {"json": {"rows": [{"mean_radius": "big"}]}}),
        ("nan", {"content": b'{"rows": [{"mean_radius": NaN}]}', "headers": json_type}),
        ("wrong-content-type", {"content": b"a,b\n1,2\n", "headers": {"content-type": "text/csv"}}),
        ("oversize", {"content": b" " * (max_body + 1), "headers": json_type}),
        ("oversize-chunked", {"content": _chunked(max_body + 65536), "headers": json_type}),
    ]
    return [kinds[i % len(kinds)] for i in range(100)]


def _chunked(size: int) -> Any:
    async def chunks() -> Any:  # no Content-Length: the server has to count the bytes
        for _ in range(size // 65536 + 1):
            yield b" " * 65536

    return chunks


async def _bad(url: str, max_body: int) -> dict[str, Any]:
    import httpx

    statuses: dict[str, list[int | str]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for name, request in _bad_requests(max_body):
            args = dict(request)
            if callable(args.get("content")):
                args["content"] = args["content"]()
            try:
                status: int | str = (await client.post("/predict", **args)).status_code
            except httpx.HTTPError as err:
                status = type(err).__name__
            statuses.setdefault(name, []).append(status)
        health = (await client.get("/health")).json()
    refused = sum(s in (400, 413) for codes in statuses.values() for s in codes)
    seen = {name: "/".join(sorted(set(map(str, codes)))) for name, codes in statuses.items()}
    return {"statuses": seen, "refused": refused, "health": health}


def _measure(run: Path, bodies: list[bytes], expected: list[str], args: argparse.Namespace, **where: Any) -> dict:
    """Start a server, load it, send the bad requests, stop it (SIGTERM); the summary."""
    load = _load_httpx if args.client == "httpx" else _load
    run_loop = asyncio.run
    if args.client == "raw":
        try:
            import uvloop

            run_loop = uvloop.run
        except ImportError:
            pass
    process, pid, url = _start(run, args, **where)
    try:
        rss_start, cpu_start = _rss_mib(pid), _cpu_s(pid)
        first = run_loop(load(url, bodies, expected, total=min(_WARMUP, args.requests), concurrency=args.concurrency))
        rss_warm = _rss_mib(pid)
        rest = run_loop(
            load(url, bodies, expected, total=max(0, args.requests - _WARMUP), concurrency=args.concurrency)
        )
        rss_end, cpu_load = _rss_mib(pid), _cpu_s(pid) - cpu_start
        bad = asyncio.run(_bad(url, 4 * 1024 * 1024)) if args.model == "cancer" else None
    finally:
        os.kill(pid, signal.SIGTERM)  # the server's; under py-spy the exit code is py-spy's, which ends with it
        code = process.wait(timeout=60)
    summary = _summary(first, rest, bad, rss=(rss_start, rss_warm, rss_end), cpu=cpu_load, code=code, args=args)
    if where.get("profile"):
        summary["profile_us_per_request"] = _breakdown(where["profile"], summary["server_cpu_ms_per_request"])
    return summary


def _summary(first: dict, rest: dict, bad: dict | None, *, rss: tuple, cpu: float, code: int, args: Any) -> dict:
    latencies = np.array(first["latencies"] + rest["latencies"]) * 1000
    count = len(latencies)
    summary = {
        "requests": count,
        "concurrency": args.concurrency,
        "errors": len(first["errors"]) + len(rest["errors"]),
        "error_examples": (first["errors"] + rest["errors"])[:5],
        "decisions_differing_from_predict": first["differing"] + rest["differing"],
        "p50_ms": round(float(np.percentile(latencies, 50)), 2) if count else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 2) if count else None,
        "p99_ms_after_warmup": round(float(np.percentile(np.array(rest["latencies"]) * 1000, 99)), 2)
        if rest["latencies"]
        else None,
        "requests_per_s": round(count / (first["seconds"] + rest["seconds"]), 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / max(count, 1), 3),
        "client_cpu_ms_per_request": round((first["client_cpu"] + rest["client_cpu"]) * 1000 / max(count, 1), 3),
        "rss_mib_at_start": round(rss[0], 1),
        "rss_mib_after_1000": round(rss[1], 1),
        "rss_mib_end": round(rss[2], 1),
        "rss_growth": round(rss[2] / rss[1] - 1, 4),
        "server_exit_code_after_sigterm": code,
    }
    if bad is not None:
        summary |= {"bad_requests_refused_400_413": bad["refused"], "bad_request_statuses": bad["statuses"],
                    "health_after_bad": bad["health"]}  # fmt: skip
    return summary


# Where a sample of the server's stack counts: the deepest frame that names a stage decides (a sample in numpy
# under `TablePreprocessor.features` is input encoding; one in json under `send_json` the response). Names are
# those of this code and of the code before it (`--compare-src`), so both get the same stages.
_STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("network forward", ("Module._call_impl", "run_in_batches", "InferenceSession.run")),
    ("decision policy", ("Policy.decide", "DenseHead.predict", "NumpyPolicy.decide", "decide_calibrated")),
    ("input encoding (rows/images to the network's input)", (
        "TablePreprocessor.features", "TablePreprocessor.transform", "Inputs.encode", "column_feeds", "table_feeds",
        "RowReader.columns", "RowReader.frame", "TableRows.frame", "source_from_frame", "load_images",
        "_write_images", "TemporaryDirectory.__init__", "TemporaryDirectory.__exit__", "TemporaryDirectory.cleanup",
        "load_images.<locals>.decode_chunk", "_images", "_tables", "predict_images", "predict_tables",
        "_torch_decisions", "raw_outputs")),
    ("predictions to rows (table, to_dict, json_safe)", (
        "prediction_records", "predictions_table", "json_safe", "DataFrame.to_dict", "_split", "_split_frame")),
    ("request body, JSON and checks", (
        "read_body", "parse_json", "parse_rows", "RowReader.read", "parse_images", "check_images", "decode_base64",
        "_parse", "Request.body", "Request.stream")),
    ("response JSON and send", (
        "send_json", "JSONResponse.__init__", "JSONResponse.render", "Response.__call__", "RequestResponseCycle.send")),
    ("batcher and thread hops (queue, futures, to_thread)", (
        "MicroBatcher.submit", "MicroBatcher._collect", "MicroBatcher._loop", "MicroBatcher._sleep", "_next",
        "_resolve", "to_thread", "run_in_executor", "wait_for")),
    ("FastAPI / Starlette routing and middleware", (
        "applications.py", "routing.py", "errors.py", "exceptions.py", "_exception_handler.py", "asyncexitstack.py",
        "utils.py", "_asgi.py", "_body_limit.py", "proxy_headers.py")),
    ("HTTP protocol and event loop (uvicorn, h11/httptools, asyncio/uvloop)", (
        "h11_impl.py", "httptools_impl.py", "base_events.py", "selector_events.py", "selectors.py", "runners.py")),
]  # fmt: skip


def _stage(frames: list[str]) -> str:
    for frame in reversed(frames):
        name, _, where = frame.partition(" (")
        file = where.split(":")[0].rsplit("/", 1)[-1]
        for stage, marks in _STAGES:
            if name in marks or file in marks:
                return stage
    return "other"


def _breakdown(path: str, cpu_ms_per_request: float) -> dict[str, float]:
    """The server's CPU per request (us) by stage, from py-spy's samples; start-up (imports, loading) left out."""
    counts: dict[str, int] = {}
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        serving = any(f.startswith(("Server.run (", "_worker (")) for f in frames)  # uvicorn's loop, the pool
        if not serving or any("_find_and_load" in f for f in frames):
            continue  # loading the run, importing, binding: not serving
        if frames[-1].startswith("_worker ("):
            continue  # a pool thread waiting for work, which py-spy does not see as idle
        counts[_stage(frames)] = counts.get(_stage(frames), 0) + int(count)
    total = sum(counts.values()) or 1
    us = {stage: round(cpu_ms_per_request * 1000 * n / total, 1) for stage, n in counts.items()}
    return dict(sorted(us.items(), key=lambda item: -item[1]))


def _ok(summary: dict) -> bool:
    bad_ok = summary.get("bad_requests_refused_400_413", 100) == 100 and summary.get("health_after_bad", {}) in (
        {},
        {"status": "ok"},
    )
    return (summary["errors"] == 0 and summary["decisions_differing_from_predict"] == 0 and bad_ok
            and abs(summary["rss_growth"]) <= 0.10 and summary["server_exit_code_after_sigterm"] == 0)  # fmt: skip


def main() -> None:
    """Run the load test and print a JSON summary; exit 1 when a check fails."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("cancer", "digits"), default="cancer")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--no-uvloop", action="store_true", help="serve on plain asyncio and h11 (uvloop hidden)")
    parser.add_argument("--compare-src", default=None, help="first measure a server run from this src folder")
    parser.add_argument("--profile", default=None, metavar="PREFIX", help="sample the servers with py-spy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run, bodies, ids, data = (_train_cancer if args.model == "cancer" else _train_digits)(folder)
        if args.backend == "onnx":
            import labelwise
            from labelwise.export import ONNX_FILE, export_onnx

            export_onnx(labelwise.load(run), run / ONNX_FILE)
        expected = _expected(run, data, ids, backend=args.backend, folder=folder)
        results: dict[str, Any] = {"load_average_before": os.getloadavg()}
        if args.compare_src:
            baseline = argparse.Namespace(**{**vars(args), "backend": "torch"})
            profile = f"{args.profile}-baseline.txt" if args.profile else None
            results["baseline"] = _measure(
                run, bodies, expected, baseline, src=args.compare_src, folder=folder, profile=profile
            )
        profile = f"{args.profile}-this.txt" if args.profile else None
        results["this"] = _measure(run, bodies, expected, args, src=None, folder=folder, profile=profile)
        results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    raise SystemExit(0 if _ok(results["this"]) else 1)


if __name__ == "__main__":
    main()
