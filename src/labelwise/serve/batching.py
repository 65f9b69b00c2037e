"""A micro-batcher: requests from many clients share one model call.

Each request becomes a job of one or more items, queued with the time it arrived. One worker task takes the jobs
waiting, in order, once they hold ``max_batch`` items or the first of them has waited ``max_wait_ms``, and runs the
model once, in a thread, so that the event loop keeps reading requests meanwhile. A job is never split: one larger
than ``max_batch`` runs alone, and a job that would overflow the batch opens the next one.

The wait counts from the first job's arrival, not from when the worker got to it: jobs that queued while the model
was busy have waited already, and go at once. Results are handed to their requests in the event loop, after the
batch: one thread hop per batch, none per request.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from labelwise.errors import ConfigError

__all__ = ["MicroBatcher"]

Job = TypeVar("Job")
_log = logging.getLogger("labelwise.serve")


@dataclass
class _Pending(Generic[Job]):
    job: Job
    size: int
    arrived: float  # the event loop's clock when the job was queued
    future: asyncio.Future[list[Any]] = field(repr=False)


@dataclass
class _Outcome:
    """What one job's run gave: its results, or the error it raised."""

    result: list[Any] | None = None
    error: BaseException | None = None


class MicroBatcher(Generic[Job]):
    """Collect jobs across concurrent callers and run them through ``run`` in batches.

    Args:
        run: takes the batch's jobs and returns one result list per job, in order. It runs in a worker thread.
        max_batch: most items in one call (a single larger job still runs, alone).
        max_wait_ms: longest time the first job of a batch waits for company, from its arrival.

    Example:
        >>> async def demo():
        ...     batcher = MicroBatcher(lambda jobs: [[x * 2 for x in job] for job in jobs], max_batch=8, max_wait_ms=5)
        ...     results = await asyncio.gather(batcher.submit([1], size=1), batcher.submit([2, 3], size=2))
        ...     await batcher.stop()
        ...     return results, batcher.calls
        >>> asyncio.run(demo())
        ([[2], [4, 6]], 1)
    """

    def __init__(self, run: Callable[[Sequence[Job]], list[list[Any]]], *, max_batch: int, max_wait_ms: float) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError(f"max_batch={max_batch!r}; expected a number of items >= 1, e.g. 64 (--max-batch).")
        if not isinstance(max_wait_ms, int | float) or isinstance(max_wait_ms, bool) or not 0 <= max_wait_ms <= 60_000:
            raise ConfigError(
                f"max_wait_ms={max_wait_ms!r}; expected milliseconds in [0, 60000], e.g. 5 (--max-wait-ms)."
            )
        self._run = run
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000
        self._queue: collections.deque[_Pending[Job]] = collections.deque()
        self._queued = 0  # items in `_queue`
        self._wakeup: asyncio.Future[None] | None = None  # what the idle worker waits on
        self._stopping = False
        self._worker: asyncio.Task[None] | None = None
        self.calls = 0  # model calls so far: how tests and the benchmark see that batching happens

    async def submit(self, job: Job, *, size: int) -> list[Any]:
        """Queue ``job`` (``size`` items) and wait for its results; re-raises what ``run`` raised for it."""
        loop = self._ensure_started()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append(_Pending(job, size, loop.time(), future))
        self._queued += size
        self._wake()
        return await future

    async def stop(self) -> None:
        """Finish every queued job, then end the worker (the server's graceful shutdown calls this)."""
        if self._worker is None:
            return
        self._stopping = True
        self._wake()
        try:
            await self._worker
        finally:
            self._worker, self._stopping = None, False

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        # Started lazily, in the loop of the first request: an ASGI test transport runs no lifespan events. A worker
        # of an earlier event loop (a second TestClient, a second asyncio.run) can never run again: start anew, or
        # the request would wait forever; the jobs it held were cancelled with their loop.
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._queue.clear()
            self._queued, self._wakeup, self._stopping = 0, None, False
            self._worker = loop.create_task(self._loop(), name="labelwise-batcher")
        return loop

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _sleep(self, timeout: float | None) -> None:
        """Wait until a job is queued, `stop` is called, or ``timeout`` seconds pass (None: no limit)."""
        loop = asyncio.get_running_loop()
        self._wakeup = wakeup = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _settle, wakeup)
        try:
            await wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    async def _loop(self) -> None:
        while (batch := await self._collect()) is not None:
            try:
                outcomes = await asyncio.to_thread(self._run_batch, batch)
            except Exception as err:  # noqa: BLE001 - a bug in one batch must not stop the worker serving the next
                _log.exception("the batch worker failed")
                outcomes = [_Outcome(error=RuntimeError(f"batch failed: {err}"))] * len(batch)
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.future.done():  # the client went away and its request was cancelled
                    continue
                if outcome.error is not None:
                    pending.future.set_exception(outcome.error)
                else:
                    pending.future.set_result(outcome.result or [])

    async def _collect(self) -> list[_Pending[Job]] | None:
        """The next batch, once it is full or its first job has waited long enough; None once stopped and empty."""
        while not self._queue:
            if self._stopping:
                return None
            await self._sleep(None)
        loop = asyncio.get_running_loop()
        deadline = self._queue[0].arrived + self._max_wait
        while self._queued < self._max_batch and not self._stopping and (left := deadline - loop.time()) > 0:
            await self._sleep(left)
        first = self._queue.popleft()
        batch, size = [first], first.size
        while self._queue and size + self._queue[0].size <= self._max_batch:
            pending = self._queue.popleft()
            batch.append(pending)
            size += pending.size
        self._queued -= size
        return batch

    def _run_batch(self, batch: list[_Pending[Job]]) -> list[_Outcome]:
        """Each job's outcome; runs in the worker thread."""
        self.calls += 1
        try:
            results = self._run([pending.job for pending in batch])
        except Exception as err:  # noqa: BLE001 - the error belongs to one job or to all; find out which below
            if len(batch) == 1:
                return [_Outcome(error=err)]
            # One client's bad values must not fail the others' requests: run each job alone to find whose it is.
            return [outcome for pending in batch for outcome in self._run_batch([pending])]
        if len(results) != len(batch):  # a bug in `run`: every job of the batch fails (500), the worker goes on
            raise RuntimeError(f"the model call gave {len(results)} result list(s) for {len(batch)} job(s)")
        return [_Outcome(result=result) for result in results]


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
