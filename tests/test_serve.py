"""`labelwise serve`: the HTTP JSON API answers what `labelwise predict` writes, refuses bad requests in one line.

In process through FastAPI's TestClient / httpx's ASGI transport, plus one real server on a loopback port.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import labelwise
from _factories import make_table
from labelwise.classifier import Classifier
from labelwise.cli import main
from labelwise.data.sources import source_from_frame
from labelwise.errors import ConfigError, DataError
from labelwise.export import ONNX_FILE, export_onnx, load_onnx
from labelwise.serve import MicroBatcher, create_app, parse_size
from labelwise.task import TaskKind
from labelwise.train import TrainConfig

TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    "binary": {},
    "multiclass": {"allow_none": "max_prob"},  # adds the decision extras `abstained` and `unknown_score`
    "multilabel": {},
}
FEATURES = ["x0", "x1", "color"]


def _table(n: int = 120, *, seed: int = 0) -> pd.DataFrame:
    return make_table(n, seed=seed)


def _rows() -> pd.DataFrame:
    """Rows to predict: some training rows, one with an unseen category and one with every value missing."""
    extra = pd.DataFrame({"x0": [0.5, np.nan], "x1": [-0.2, np.nan], "color": ["purple", None]})
    return pd.concat([_table()[FEATURES].head(10), extra], ignore_index=True)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as a client sends them: JSON null for a missing value."""
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


@pytest.fixture(scope="module")
def table_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Classifier, Path]]:
    root = tmp_path_factory.mktemp("serve")
    frame = _table()
    runs = {}
    for kind, options in TABLE_OPTIONS.items():
        data = frame[[*FEATURES, kind]]
        run = root / kind
        clf = labelwise.fit(data, target=kind, config=TrainConfig(epochs=2), progress=False, out=run, **options)
        runs[kind] = (clf, run)
    return runs


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Classifier, Path, Path]:
    root = tmp_path_factory.mktemp("serve-images")
    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        (root / "imgs" / label).mkdir(parents=True)
        for i in range(30):
            pixels = rng.integers(0, 100, size=(16, 16), dtype=np.uint8) + (120 if label == "light" else 0)
            Image.fromarray(pixels.astype(np.uint8)).save(root / "imgs" / label / f"{i}.png")
    run = root / "run"
    clf = labelwise.fit(root / "imgs", config=TrainConfig(epochs=2), progress=False, out=run, model="cnn")
    return clf, run, root / "imgs"


def _predict_csv(run: Path, data: Path, out: Path, *options: str) -> pd.DataFrame:
    assert main(["predict", str(run), str(data), "--out", str(out), *options]) == 0
    return pd.read_csv(out, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def onnx_runs(table_runs: dict[str, tuple[Classifier, Path]]) -> dict[str, Path]:
    """The table runs, each exported to RUN/model.onnx (`serve --backend onnx` reads it)."""
    for clf, run in table_runs.values():
        export_onnx(clf, run / ONNX_FILE)
    return {kind: run for kind, (_, run) in table_runs.items()}


def _assert_rows_equal_csv(rows: list[dict[str, Any]], expected: pd.DataFrame, *, ids: bool = True) -> None:
    """Each JSON row holds exactly the predictions.csv row: same keys in order, same values (floats to 1e-6)."""
    assert len(rows) == len(expected)
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        assert list(row) == list(expected.columns)
        for key, value in row.items():
            if key == "id" and not ids:
                continue
            if isinstance(value, float):  # CSV text round trip of a float32 probability
                assert value == pytest.approx(float(want[key]), rel=1e-6, abs=1e-7), key
            else:
                assert isinstance(value, str | bool), (key, value)
                assert str(value) == want[key], key


def test_table_response_equals_predictions_csv(
    kind: TaskKind, table_runs: dict[str, tuple[Classifier, Path]], tmp_path: Path
) -> None:
    clf, run = table_runs[str(kind)]
    rows = _rows()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = _predict_csv(run, tmp_path / "rows.csv", tmp_path / "predictions.csv")
    with TestClient(create_app(labelwise.load(run))) as client:
        response = client.post("/predict", json={"rows": _records(rows)})
    assert response.status_code == 200, response.text
    _assert_rows_equal_csv(response.json()["predictions"], expected)
    if kind == "multiclass":
        assert {"abstained", "unknown_score"} <= set(expected.columns)


def test_onnx_table_response_equals_predict_backend_onnx(
    kind: TaskKind, onnx_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = onnx_runs[str(kind)]
    rows = _rows()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = _predict_csv(run, tmp_path / "rows.csv", tmp_path / "predictions.csv", "--backend", "onnx")
    with TestClient(create_app(load_onnx(run, threads=1))) as client:
        response = client.post("/predict", json={"rows": _records(rows)})
        meta = client.get("/metadata").json()
    assert response.status_code == 200, response.text
    _assert_rows_equal_csv(response.json()["predictions"], expected)
    with TestClient(create_app(labelwise.load(run))) as client:
        assert meta == client.get("/metadata").json()  # the same run, whichever backend serves it


_SERVE_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from labelwise.export import load_onnx
from labelwise.serve import create_app
with TestClient(create_app(load_onnx({run!r}))) as client:
    answer = client.post("/predict", json={{"rows": {rows!r}}})
print(json.dumps([answer.status_code, "torch" in sys.modules]))
"""


def test_serving_an_onnx_table_run_imports_no_torch(onnx_runs: dict[str, Path]) -> None:
    # An ONNX table run is served with onnxruntime and numpy: torch's import would cost ~1.5 s and ~450 MB.
    probe = _SERVE_PROBE.format(run=str(onnx_runs["multiclass"]), rows=[GOOD_ROW, {**GOOD_ROW, "x0": None}])
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [200, False]


def _png_bytes(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize("how", ["base64", "multipart"])
def test_image_response_equals_predictions_csv(
    how: str, image_run: tuple[Classifier, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clf, run, folder = image_run
    expected = _predict_csv(run, folder, tmp_path / "predictions.csv")
    files = [folder / name for name in expected["id"]]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with TestClient(create_app(clf)) as client:
        if how == "base64":
            images = [base64.b64encode(_png_bytes(f)).decode() for f in files]
            response = client.post("/predict", json={"images": images})
        else:
            parts = [("images", (f.name, _png_bytes(f), "image/png")) for f in files]
            response = client.post("/predict", files=parts)
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    _assert_rows_equal_csv(rows, expected, ids=False)
    want_ids = [str(i) for i in range(len(files))] if how == "base64" else [f.name for f in files]
    assert [row["id"] for row in rows] == want_ids
    assert list((tmp_path / "tmp").iterdir()) == []  # the decoded files are gone with their request


def _chunks(data: bytes) -> Iterator[bytes]:
    # A generator body is sent chunked, without Content-Length: the server must count what arrives.
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]


GOOD_ROW = {"x0": 0.1, "x1": -1.0, "color": "red"}
# 1e999 parses to inf; an int of 401 digits overflows a float
HUGE_NUMBERS = b'{"rows": [{"x0": 1e999, "x1": 1, "color": "red"}, {"x0": 1, "x1": 1' + b"0" * 400 + b', "color": 1}]}'
BAD_TABLE_REQUESTS = [
    pytest.param(b"{not json", "application/json", 400, r"not valid JSON", id="malformed-json"),
    pytest.param(b"\xff\xfe", "application/json", 400, r"not valid JSON", id="not-utf8"),
    pytest.param(b"[1, 2]", "application/json", 400, r"JSON array; expected an object", id="not-an-object"),
    pytest.param(b'{"row": []}', "application/json", 400, r"unknown field\(s\) 'row'", id="misspelt-rows"),
    pytest.param(b'{"rows": []}', "application/json", 400, r"'rows' is an empty list", id="empty-rows"),
    pytest.param(b'{"rows": 3}', "application/json", 400, r"'rows' is a JSON number", id="rows-not-list"),
    pytest.param(b'{"rows": [1]}', "application/json", 400, r"rows\[0\] not JSON object", id="row-not-object"),
    pytest.param(b'{"images": ["x"]}', "application/json", 400, r"'images' is for the other kind",
                 id="images-to-table"),
    pytest.param(
        json.dumps({"rows": [GOOD_ROW, {"x0": 1.0, "color": "red"}]}).encode(),
        "application/json", 400, r"rows\[1\] lack\(s\) feature\(s\) 'x1'", id="missing-feature",
    ),
    pytest.param(
        json.dumps({"rows": [GOOD_ROW, {"x0": 1.0, "X1 ": 2.0, "color": "red"}]}).encode(),
        "application/json", 400,
        r"^rows\[1\] lack\(s\) feature\(s\) 'x1' \(did you mean 'X1 '\?\)\. Expected every row to hold the features "
        r"'x0', 'x1', 'color' \(other fields are ignored\); add the missing ones", id="misspelt-feature",
    ),
    pytest.param(
        json.dumps({"rows": [{"x0": 1, "x_1": 2, "colour": "red"}, {"x0": 1, "x1": 2, "color_": "red"}]}).encode(),
        "application/json", 400,
        r"^rows\[0\], rows\[1\] lack\(s\) feature\(s\) 'color' \(did you mean 'color_', 'colour'\?\); "
        r"rows\[0\] lack\(s\) feature\(s\) 'x1' \(did you mean 'x_1'\?\)\. Expected",
        id="misspelt-in-two-rows",
    ),
    pytest.param(
        json.dumps({"rows": [{"x0": 1.0, "color": "red", "id": 7}]}).encode(),
        "application/json", 400, r"^rows\[0\] lack\(s\) feature\(s\) 'x1'\. Expected", id="missing-no-close-field",
    ),
    pytest.param(
        json.dumps({"rows": [GOOD_ROW, {"x0": 1}, {"x0": 2}]}).encode(),
        "application/json", 400, r"rows\[1\], rows\[2\] lack\(s\) feature\(s\) 'color', 'x1'", id="missing-two",
    ),
    pytest.param(
        json.dumps({"rows": [GOOD_ROW, {**GOOD_ROW, "x1": "tall"}]}).encode(),
        "application/json", 400,
        r"^numeric feature columns hold values that are not numbers: 'x1' in row 1 \('tall'\); expected a finite "
        r"number or null \(null is filled with the training median\); fix those values\.$", id="text-number",
    ),
    pytest.param(
        json.dumps({"rows": [{**GOOD_ROW, "x0": True}]}).encode(),
        "application/json", 400, r"not numbers: 'x0' in row 0 \(True\)", id="bool-number",
    ),
    pytest.param(
        json.dumps({"rows": [{**GOOD_ROW, "color": ["red"]}]}).encode(),
        "application/json", 400, r"feature 'color' is \['red'\] in rows\[0\]; expected a string", id="nested",
    ),
    pytest.param(HUGE_NUMBERS, "application/json", 400,
                 r"not numbers: 'x0' in row 0 \(inf\); 'x1' in row 1 \(1000.*\); expected a finite",
                 id="too-large-numbers"),
    pytest.param(b'{"rows": [{"x0": NaN, "x1": 1, "color": "red"}]}', "application/json", 400,
                 r"NaN, which is not JSON", id="nan"),
    pytest.param(json.dumps({"rows": [GOOD_ROW]}).encode(), "text/csv", 400, r"Content-Type is 'text/csv'", id="csv"),
    pytest.param(b"--x\r\n", "multipart/form-data; boundary=x", 400, r"multipart uploads are for image models",
                 id="multipart-to-table"),
    pytest.param(b'{"rows": [' + b'{"x0": 1, "x1": 2, "color": "red"},' * 200_000 + b"]}", "application/json", 413,
                 r"over this server's limit of 4,194,304 \(--max-body\)", id="oversize"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "status", "message"), BAD_TABLE_REQUESTS)
def test_bad_table_request_is_one_line_naming_the_field(
    table_runs: dict[str, tuple[Classifier, Path]], body: bytes, content_type: str, status: int, message: str
) -> None:
    clf, _ = table_runs["binary"]
    with TestClient(create_app(clf)) as client:
        response = client.post("/predict", content=body, headers={"content-type": content_type})
        assert response.status_code == status, response.text
        assert list(response.json()) == ["error"]
        error = response.json()["error"]
        assert "\n" not in error and "Traceback" not in error
        assert re.search(message, error), error
        assert client.get("/health").json() == {"status": "ok"}
        assert client.post("/predict", json={"rows": [GOOD_ROW]}).status_code == 200


def test_chunked_oversize_body_is_413_without_reading_it_all(table_runs: dict[str, tuple[Classifier, Path]]) -> None:
    clf, _ = table_runs["binary"]
    body = b'{"rows": [' + b"0," * 600_000 + b"0]}"
    with TestClient(create_app(clf, max_body=1_000_000)) as client:
        response = client.post("/predict", content=_chunks(body), headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text
        assert "limit of 1,000,000" in response.json()["error"]
        assert client.get("/health").status_code == 200


def _png(color: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (20, 20), color=color).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_IMAGE_REQUESTS = [
    pytest.param({"json": {"images": [base64.b64encode(_png()).decode(), "!!not base64!!"]}},
                 r"images\[1\]: not valid base64", id="not-base64"),
    pytest.param({"json": {"images": [base64.b64encode(b"GIF89a junk").decode()]}},
                 r"1 image\(s\) cannot be used: images\[0\]: cannot decode the image", id="undecodable"),
    pytest.param({"json": {"images": [7]}}, r"images\[0\]: a JSON number, expected a base64 string", id="not-a-string"),
    pytest.param({"json": {"rows": [{"a": 1}]}}, r"'rows' is for the other kind of model", id="rows-to-images"),
    pytest.param({"files": [("f", ("ok.png", _png(), "image/png")), ("f", ("bad.png", b"", "image/png"))]},
                 r"bad.png: empty image \(0 bytes\)", id="multipart-empty-file"),
    pytest.param({"files": [("f", ("ok.png", _png(), "image/png"))], "data": {"note": "hi"}},
                 r"multipart field\(s\) 'note' are not files", id="multipart-text-field"),
]  # fmt: skip


@pytest.mark.parametrize(("request_args", "message"), BAD_IMAGE_REQUESTS)
def test_bad_image_request_names_the_item(
    image_run: tuple[Classifier, Path, Path], request_args: dict[str, Any], message: str
) -> None:
    clf, _, _ = image_run
    with TestClient(create_app(clf)) as client:
        response = client.post("/predict", **request_args)
        assert response.status_code == 400, response.text
        assert re.search(message, response.json()["error"]), response.json()
        assert client.get("/health").status_code == 200


def test_concurrent_clients_share_model_calls(table_runs: dict[str, tuple[Classifier, Path]]) -> None:
    clf, _ = table_runs["multiclass"]
    rows = _records(_rows())
    alone = clf.predictions_frame(source_from_frame(pd.DataFrame(rows)))

    async def burst(app: Any, n: int, *, every_s: float) -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

                async def post(i: int) -> httpx.Response:
                    await asyncio.sleep(i * every_s)
                    return await client.post("/predict", json={"rows": [rows[i % len(rows)]]})

                return await asyncio.gather(*(post(i) for i in range(n)))

    app = create_app(clf, max_batch=64, max_wait_ms=2000)
    responses = asyncio.run(burst(app, 24, every_s=0.01))
    assert app.state.batcher.calls == 1  # 24 single-row requests, one every 10 ms, within 2 s: one model call
    for i, response in enumerate(responses):
        row = response.json()["predictions"]
        assert len(row) == 1 and row[0]["id"] == "0"
        assert row[0]["prediction"] == alone["prediction"].iloc[i % len(rows)]
    small = create_app(clf, max_batch=5, max_wait_ms=500)
    asyncio.run(burst(small, 24, every_s=0))
    assert small.state.batcher.calls == 5  # ceil(24 / 5): a batch never holds more than max_batch items


def test_one_failing_job_does_not_fail_its_batch() -> None:
    def run(jobs: Any) -> list[list[Any]]:
        if "bad" in jobs:
            raise DataError("bad job")
        return [[job.upper()] for job in jobs]

    async def go() -> list[Any]:
        batcher: MicroBatcher[str] = MicroBatcher(run, max_batch=8, max_wait_ms=200)
        jobs = [batcher.submit(job, size=1) for job in ("a", "bad", "c")]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.stop()
        return results

    ok_a, bad, ok_c = asyncio.run(go())
    assert ok_a == ["A"] and ok_c == ["C"]
    assert isinstance(bad, DataError) and "bad job" in str(bad)


def test_a_batcher_serves_a_second_event_loop() -> None:
    # One app used by two TestClients (or two asyncio.run calls) meets two loops; the first loop's worker is gone.
    batcher: MicroBatcher[str] = MicroBatcher(lambda jobs: [[job * 2] for job in jobs], max_batch=8, max_wait_ms=1)

    async def go(job: str) -> list[Any]:
        return await asyncio.wait_for(batcher.submit(job, size=1), timeout=10)

    assert asyncio.run(go("a")) == ["aa"]
    assert asyncio.run(go("b")) == ["bb"]  # timed out (the request waited forever) before the worker was restarted


def test_a_bug_is_500_with_one_generic_line(
    table_runs: dict[str, tuple[Classifier, Path]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clf, run = table_runs["binary"]
    clf = labelwise.load(run)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(Classifier, "raw_outputs", broken)  # both ways of predicting call it; patch the frozen class
    with TestClient(create_app(clf)) as client:
        response = client.post("/predict", json={"rows": [GOOD_ROW]})
        assert response.status_code == 500
        assert response.json() == {"error": "internal error while predicting; the server log has the details."}
        assert client.get("/health").status_code == 200
    assert "secret internals" in caplog.text  # the server log keeps the traceback


def test_metadata_and_unknown_routes(table_runs: dict[str, tuple[Classifier, Path]]) -> None:
    clf, _ = table_runs["multiclass"]
    with TestClient(create_app(clf)) as client:
        meta = client.get("/metadata").json()
        missing = client.get("/predict")
    assert meta["kind"] == "multiclass" and meta["classes"] == list(clf.task.classes)
    assert meta["decision"] == json.loads(json.dumps(clf.policy.to_dict()))
    assert meta["decision"]["abstention"] is not None
    assert meta["versions"]["torch"] and meta["metrics"]["valid"]["accuracy"] >= 0
    assert [f["name"] for f in meta["inputs"]["features"]] == FEATURES
    assert missing.status_code == 405 and "POST /predict" in missing.json()["error"]


def test_options_out_of_range(table_runs: dict[str, tuple[Classifier, Path]]) -> None:
    clf, _ = table_runs["binary"]
    with pytest.raises(ConfigError, match=r"max_batch=0; expected a number of items >= 1.*--max-batch"):
        create_app(clf, max_batch=0)
    with pytest.raises(ConfigError, match=r"max_wait_ms=-1; expected milliseconds"):
        create_app(clf, max_wait_ms=-1)
    with pytest.raises(ConfigError, match=r"max_body=10; expected a number of bytes >= 1024"):
        create_app(clf, max_body=10)
    with pytest.raises(ConfigError, match=r"--max-body '4 parsecs'; expected a size such as 4MB"):
        parse_size("4 parsecs")


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("labelwise: error: ")
    return lines[0]


def _tamper(run: Path) -> None:
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_serve_bad_input_is_exit_2_one_line(
    table_runs: dict[str, tuple[Classifier, Path]], tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = table_runs["binary"]
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "nope" in _error_line(capsys)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for file in run.iterdir():
        if file.is_file():
            (tampered / file.name).write_bytes(file.read_bytes())
    _tamper(tampered)
    assert main(["serve", str(tampered), "--port", "0"]) == 2
    assert "checksum" in _error_line(capsys)
    assert main(["serve", str(run), "--port", str(busy_port)]) == 2
    assert f"port {busy_port} on 127.0.0.1 is already in use" in _error_line(capsys)
    assert main(["serve", str(run), "--max-body", "lots"]) == 2
    assert "--max-body 'lots'" in _error_line(capsys)
    assert main(["serve", str(run), "--threads", "0"]) == 2
    assert "--threads 0; expected a number of threads >= 1" in _error_line(capsys)
    bare = tmp_path / "bare"  # the run without model.onnx: `--backend onnx` needs `labelwise export` first
    bare.mkdir()
    for name in ("labelwise.json", "model.safetensors"):
        (bare / name).write_bytes((run / name).read_bytes())
    assert main(["serve", str(bare), "--backend", "onnx", "--port", "0"]) == 2
    line = _error_line(capsys)
    assert "holds no model.onnx" in line and f"labelwise export {bare}" in line


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_real_server_drains_an_in_flight_request_on_sigterm(onnx_runs: dict[str, Path], backend: str) -> None:
    run = onnx_runs["binary"]
    command = [sys.executable, "-m", "labelwise", "serve", str(run), "--port", "0", "--max-wait-ms", "3000",
               "--backend", backend]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # "labelwise: serving RUN at http://127.0.0.1:PORT (...)"
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:"), line
        _wait_healthy(url)
        result: dict[str, httpx.Response] = {}
        thread = threading.Thread(
            target=lambda: result.update(r=httpx.post(f"{url}/predict", json={"rows": [GOOD_ROW]}, timeout=30))
        )
        thread.start()
        time.sleep(1.0)  # the request now waits in the batcher for company (up to 3 s)
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        assert process.wait(timeout=30) == 0
        assert result["r"].status_code == 200 and result["r"].json()["predictions"][0]["id"] == "0"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _wait_healthy(url: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url}/health never answered")


def test_a_batch_never_exceeds_max_batch_items_and_a_large_job_runs_alone() -> None:
    sizes: list[int] = []

    def run(jobs: Any) -> list[list[Any]]:
        sizes.append(sum(len(job) for job in jobs))
        return [list(job) for job in jobs]

    async def go() -> list[Any]:
        batcher: MicroBatcher[list[int]] = MicroBatcher(run, max_batch=5, max_wait_ms=200)
        jobs = [[1, 2, 3], [4, 5], [6, 7, 8], [9] * 7, [10]]
        results = await asyncio.gather(*(batcher.submit(job, size=len(job)) for job in jobs))
        await batcher.stop()
        return results

    assert asyncio.run(go()) == [[1, 2, 3], [4, 5], [6, 7, 8], [9] * 7, [10]]
    assert sizes == [5, 3, 7, 1]  # [1,2,3]+[4,5]; [6,7,8] (+[9]*7 would overflow); [9]*7 alone; [10]
