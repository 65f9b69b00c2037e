"""The parts of `labelwise serve`'s fast path, against the code ``labelwise predict`` runs.

`prediction_records` against `predictions_table` (every kind, abstention, sets, NaN), `RowReader`'s quick pass
against its full checks, and the batcher's wait counted from each job's arrival. `tests/test_serve.py` checks whole
responses against ``predictions.csv``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from _factories import make_table, make_task
from labelwise._predictions import prediction_records, predictions_table
from labelwise.data.sources import source_from_frame
from labelwise.export._numpy_policy import NumpyDecisions
from labelwise.inputs import Inputs
from labelwise.serve import MicroBatcher
from labelwise.serve.bodies import RequestError
from labelwise.serve.predicting import json_safe
from labelwise.serve.rows import RowReader
from labelwise.task import Task, TaskKind


def _decisions(task: Task, *, extras: str, seed: int = 0, n: int = 9) -> NumpyDecisions:
    """Seeded decisions of ``task``'s shapes and dtypes; ``extras``: ``abstain`` (some -1, scores with a NaN),
    ``sets`` (top-2 sets), ``nan`` (a row of NaN probabilities), or ``none``."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(task.num_classes), size=n).astype(np.float32)
    if task.kind is TaskKind.MULTILABEL:
        decisions: np.ndarray = probs > 0.3
        decisions[0] = False  # an empty set: no label
    else:
        decisions = probs.argmax(axis=1).astype(np.int64)
    abstained, scores, sets = np.zeros(n, dtype=bool), None, None
    if extras == "abstain" and task.kind is not TaskKind.MULTILABEL:
        abstained[::3] = True
        decisions = np.where(abstained, -1, decisions)
        scores = rng.normal(size=n)
        scores[1] = np.nan
    if extras == "sets":
        sets = np.zeros(probs.shape, dtype=bool)
        np.put_along_axis(sets, np.argsort(-probs, axis=1)[:, :2], True, axis=1)
    if extras == "nan":
        probs[2] = np.nan
    return NumpyDecisions(probs, decisions, abstained, scores, sets)


@pytest.mark.parametrize("extras", ["none", "abstain", "sets", "nan"])
@pytest.mark.parametrize("classes", ["strings", "ints"])
def test_prediction_records_are_the_predictions_table_rows(kind: TaskKind, extras: str, classes: str) -> None:
    task = make_task(kind)
    if classes == "ints":
        task = Task(kind=kind, classes=range(10, 10 + task.num_classes))
    out = _decisions(task, extras=extras)
    ids = [str(i) for i in range(len(out.probs))]
    source = source_from_frame(pd.DataFrame({"x": np.zeros(len(ids))}))
    kept = np.ones(len(ids), dtype=bool)
    table = predictions_table(out, source=source, kept=kept, task=task)
    expected = [json_safe(row) for row in table.to_dict(orient="records")]
    records = prediction_records(out, ids=ids, task=task)
    assert records == expected
    assert [list(row) for row in records] == [list(row) for row in expected]  # the columns' order too
    assert all(type(v) in (str, float, bool, type(None)) for row in records for v in row.values())


@pytest.fixture(scope="module")
def reader() -> RowReader:
    frame = make_table(60).assign(flag=["yes", "no"] * 30)
    source = source_from_frame(frame[["x0", "x1", "color", "flag", "binary"]], target="binary")
    inputs = Inputs.fit(source, np.arange(60))
    assert [column.kind for column in inputs.row_columns] == ["numeric", "numeric", "categorical", "boolean"]
    return RowReader(inputs.row_columns)


def _same(a: Any, b: Any) -> None:
    np.testing.assert_array_equal(a.numeric, b.numeric)  # NaN in the same places
    assert a.others == b.others and a.num_rows == b.num_rows


@pytest.mark.parametrize(
    "spelled",
    [
        pytest.param({"x0": "0.25", "x1": " -3 "}, id="numbers-as-strings"),
        pytest.param({"x0": 0.25, "x1": -3, "note": [1, 2]}, id="extra-field-of-any-type"),
        pytest.param({"x0": 0.25, "x1": -3.0}, id="int-as-float"),
    ],
)
def test_rows_read_alike_whichever_pass_reads_them(reader: RowReader, spelled: dict[str, Any]) -> None:
    # Plain numbers take the quick pass; strings of numbers need the full checks, which read them as `predict`
    # reads a CSV cell. Both must give the same arrays.
    plain = {"x0": 0.25, "x1": -3, "color": "red", "flag": "yes"}
    rows = [plain, {"x0": None, "x1": 10**20, "color": 7, "flag": True}]
    expected = reader.read({"rows": rows})
    assert expected.numeric.dtype == np.float64 and expected.numeric.shape == (2, 2)
    assert np.isnan(expected.numeric[1, 0]) and expected.numeric[1, 1] == 1e20
    _same(reader.read({"rows": [{**plain, **spelled}, rows[1]]}), expected)
    columns = reader.columns([expected, expected])
    assert columns["x1"].tolist() == [-3.0, 1e20, -3.0, 1e20] and columns["color"].tolist() == ["red", 7] * 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        pytest.param({"x0": True}, r"not numbers: 'x0' in row 0 \(True\)", id="bool"),
        pytest.param({"x0": 10**400}, r"not numbers: 'x0' in row 0", id="huge-int"),
        pytest.param({"x0": float("inf")}, r"not numbers: 'x0' in row 0 \(inf\)", id="inf"),
        pytest.param({"color": [1]}, r"categorical feature 'color' is \[1\]", id="list-category"),
        pytest.param({"flag": "maybe"}, r"boolean feature 'flag' is 'maybe'", id="not-boolean"),
    ],
)
def test_what_the_quick_pass_leaves_to_the_full_checks_is_refused(
    reader: RowReader, row: dict[str, Any], message: str
) -> None:
    good = {"x0": 0.25, "x1": -3, "color": "red", "flag": "yes"}
    with pytest.raises(RequestError, match=message):
        reader.read({"rows": [{**good, **row}]})


def test_a_job_that_waited_for_a_busy_model_is_not_kept_waiting_again() -> None:
    # max_wait counts from a job's arrival: one that queued while the model was busy has had its wait, and runs as
    # soon as the model is free (counting from when the worker took it, it waited another max_wait: 1 s here).
    release = threading.Event()
    finished: dict[str, float] = {}

    def run(jobs: Any) -> list[list[Any]]:
        if "slow" in jobs:
            release.wait(10)
        return [[job] for job in jobs]

    async def go() -> None:
        batcher: MicroBatcher[str] = MicroBatcher(run, max_batch=2, max_wait_ms=1000)

        async def submit(job: str, size: int) -> None:
            await batcher.submit(job, size=size)
            finished[job] = time.perf_counter()

        slow = asyncio.ensure_future(submit("slow", 2))  # a full batch: it runs at once
        await asyncio.sleep(0.05)
        quick = asyncio.ensure_future(submit("quick", 1))  # half a batch: it may wait up to 1 s for company
        await asyncio.sleep(1.2)  # "quick" has now waited longer than max_wait, behind the busy model
        release.set()
        await asyncio.gather(slow, quick)
        await batcher.stop()

    asyncio.run(go())
    assert finished["quick"] - finished["slow"] < 0.5


def test_the_batcher_drains_every_queued_job_on_stop_and_serves_again_after() -> None:
    async def go() -> tuple[list[Any], list[Any]]:
        batcher: MicroBatcher[int] = MicroBatcher(lambda jobs: [[j] for j in jobs], max_batch=4, max_wait_ms=60_000)
        pending = [asyncio.ensure_future(batcher.submit(i, size=1)) for i in range(3)]
        await asyncio.sleep(0)
        await batcher.stop()  # the 3 jobs would otherwise wait a minute for a fourth
        first = await asyncio.gather(*pending)
        again = await asyncio.wait_for(asyncio.gather(batcher.submit(7, size=4)), 10)
        await batcher.stop()
        return first, again

    assert asyncio.run(go()) == ([[0], [1], [2]], [[7]])


def test_a_run_giving_the_wrong_number_of_results_fails_its_batch_not_the_worker() -> None:
    calls = []

    def run(jobs: Any) -> list[list[Any]]:
        calls.append(list(jobs))
        return [] if "bad" in jobs else [[j] for j in jobs]

    async def go() -> tuple[Any, Any]:
        batcher: MicroBatcher[str] = MicroBatcher(run, max_batch=1, max_wait_ms=0)
        bad = await asyncio.gather(batcher.submit("bad", size=1), return_exceptions=True)
        good = await batcher.submit("ok", size=1)
        await batcher.stop()
        return bad[0], good

    bad, good = asyncio.run(go())
    assert isinstance(bad, RuntimeError) and "1 job(s)" in str(bad) and good == ["ok"]
