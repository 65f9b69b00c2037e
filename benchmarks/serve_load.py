"""Load test of ``labelwise serve`` on loopback: throughput, latency, memory, and bad requests under load.

Trains a small table model (scikit-learn's breast-cancer data, 30 numeric features, binary), starts
``labelwise serve RUN --port 0`` as a subprocess on 127.0.0.1, then:

1. sends ``--requests`` (10,000) single-row ``POST /predict`` requests from ``--concurrency`` (32) concurrent
   clients (one httpx.AsyncClient, a bounded loop per client), and reports errors, p50/p99 latency, requests/s,
   and the server's resident memory (VmRSS of /proc/<pid>/status) after the first 1,000 requests and at the end;
2. sends 100 malformed and oversize requests (10 kinds, 10 each) and checks that every one gets 400 or 413 and
   that ``GET /health`` still answers ok.

The client runs in this process, on the same cores as the server: on a small shared machine it takes a large share
of the CPU, so the numbers are a floor, not the server's capacity.

    python benchmarks/serve_load.py
    python benchmarks/serve_load.py --requests 2000 --concurrency 8 --max-wait-ms 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sklearn.datasets

import labelwise
from labelwise.train import TrainConfig

_WARMUP = 1000  # memory is compared against the server after this many requests (caches and pools warmed up)


def _train(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    data = sklearn.datasets.load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: str(c).replace(" ", "_"))
    run = folder / "run"
    labelwise.fit(frame, target="target", config=TrainConfig(epochs=5, seed=0), progress=False, out=run)
    rows = frame.drop(columns="target").to_dict(orient="records")
    return run, [{k: float(v) for k, v in row.items()} for row in rows]


def _start(run: Path, *, max_batch: int, max_wait_ms: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "labelwise", "serve", str(run), "--host", "127.0.0.1", "--port", "0",
               "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    if " at http://" not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line}{process.stderr.read()}")
    url = line.split(" at ")[1].split()[0]
    for _ in range(400):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
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


async def _load(url: str, rows: list[dict[str, Any]], *, total: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for i in counter:  # shared iterator: the clients together send exactly `total` requests
                start = time.perf_counter()
                try:
                    response = await client.post("/predict", json={"rows": [rows[i % len(rows)]]})
                    ok = response.status_code == 200 and len(response.json()["predictions"]) == 1
                    if not ok:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as err:
                    errors.append(f"{type(err).__name__}: {err}")
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    return {"latencies": latencies, "errors": errors, "seconds": seconds}


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
    seen = {name: sorted(set(map(str, codes))) for name, codes in statuses.items()}
    return {"statuses": seen, "refused": refused, "health": health}


def main() -> None:
    """Run the load test and print a JSON summary; exit 1 when a bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run, rows = _train(Path(folder))
        process, url = _start(run, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
        try:
            rss_start, cpu_start = _rss_mib(process.pid), _cpu_s(process.pid)
            first = asyncio.run(_load(url, rows, total=min(_WARMUP, args.requests), concurrency=args.concurrency))
            rss_warm = _rss_mib(process.pid)
            rest = asyncio.run(_load(url, rows, total=max(0, args.requests - _WARMUP), concurrency=args.concurrency))
            rss_end, cpu_load = _rss_mib(process.pid), _cpu_s(process.pid) - cpu_start
            bad = asyncio.run(_bad(url, 4 * 1024 * 1024))
        finally:
            process.terminate()
            code = process.wait(timeout=60)
    latencies = np.array(first["latencies"] + rest["latencies"]) * 1000
    summary = {
        "requests": len(latencies),
        "concurrency": args.concurrency,
        "errors": len(first["errors"]) + len(rest["errors"]),
        "error_examples": (first["errors"] + rest["errors"])[:5],
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "requests_per_s": round(len(latencies) / (first["seconds"] + rest["seconds"]), 1),
        "server_cpu_ms_per_request": round(cpu_load * 1000 / len(latencies), 3),
        "rss_mib_at_start": round(rss_start, 1),
        "rss_mib_after_1000": round(rss_warm, 1),
        "rss_mib_end": round(rss_end, 1),
        "rss_growth": round(rss_end / rss_warm - 1, 4),
        "bad_requests_refused_400_413": bad["refused"],
        "bad_request_statuses": bad["statuses"],
        "health_after_bad": bad["health"],
        "server_exit_code_after_sigterm": code,
    }
    print(json.dumps(summary, indent=2))
    ok = (summary["errors"] == 0 and abs(summary["rss_growth"]) <= 0.10 and bad["refused"] == 100
          and bad["health"] == {"status": "ok"} and code == 0)  # fmt: skip
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
