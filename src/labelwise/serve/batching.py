"""A micro-batcher: requests from many clients share one model call.

Each request becomes a job of one or more items. One worker task takes the first waiting job, then collects more
until the batch holds ``max_batch`` items or ``max_wait_ms`` has passed since that first job, and runs the model
once, in a thread, so that the event loop keeps reading requests meanwhile. A job is never split: one larger than
``max_batch`` runs alone, and a job that would overflow the batch opens the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    future: asyncio.Future[list[Any]] = field(repr=False)


_STOP: Any = object()  # queued by `stop`: every job queued before it still runs


class MicroBatcher(Generic[Job]):
    """Collect jobs across concurrent callers and run them through ``run`` in batches.

    Args:
        run: takes the batch's jobs and returns one result list per job, in order. It runs in a worker thread.
        max_batch: most items in one call (a single larger job still runs, alone).
        max_wait_ms: longest time the first job of a batch waits for company.

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
        self._queue: asyncio.Queue[_Pending[Job]] | None = None
        self._held: _Pending[Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.calls = 0  # model calls so far: how tests and the benchmark see that batching happens

    async def submit(self, job: Job, *, size: int) -> list[Any]:
        """Queue ``job`` (``size`` items) and wait for its results; re-raises what ``run`` raised for it."""
        queue = self._ensure_started()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await queue.put(_Pending(job, size, future))
        return await future

    async def stop(self) -> None:
        """Finish every queued job, then end the worker (the server's graceful shutdown calls this)."""
        if self._worker is None or self._queue is None:
            return
        await self._queue.put(_STOP)
        await self._worker
        self._worker = self._queue = None

    def _ensure_started(self) -> asyncio.Queue[_Pending[Job]]:
        # Started lazily, in the loop of the first request: an ASGI test transport runs no lifespan events. A worker
        # of an earlier event loop (a second TestClient, a second asyncio.run) can never run again: start anew, or
        # the request would wait forever.
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._queue, self._held = asyncio.Queue(), None
            self._worker = loop.create_task(self._loop(self._queue), name="labelwise-batcher")
        return self._queue

    async def _loop(self, queue: asyncio.Queue[_Pending[Job]]) -> None:
        while (batch := await self._collect(queue)) is not None:
            try:
                await asyncio.to_thread(self._run_batch, batch)
            except Exception:  # noqa: BLE001 - a bug in one batch must not stop the worker serving the next ones
                _log.exception("the batch worker failed")
                for pending in batch:
                    _resolve(pending, error=RuntimeError("batch failed"))

    async def _collect(self, queue: asyncio.Queue[_Pending[Job]]) -> list[_Pending[Job]] | None:
        first = self._held or await queue.get()
        self._held = None
        if first is _STOP:
            return None
        batch, size = [first], first.size
        deadline = asyncio.get_running_loop().time() + self._max_wait
        while size < self._max_batch:
            pending = await _next(queue, deadline)
            if pending is None:
                break
            if pending is _STOP or size + pending.size > self._max_batch:
                self._held = pending  # opens the next batch (or ends the worker once this batch is done)
                break
            batch.append(pending)
            size += pending.size
        return batch

    def _run_batch(self, batch: list[_Pending[Job]]) -> None:
        self.calls += 1
        try:
            results = self._run([pending.job for pending in batch])
        except Exception as err:  # noqa: BLE001 - the error belongs to one job or to all; find out which below
            if len(batch) == 1:
                _resolve(batch[0], error=err)
                return
            # One client's bad values must not fail the others' requests: run each job alone to find whose it is.
            for pending in batch:
                self._run_batch([pending])
            return
        for pending, result in zip(batch, results, strict=True):
            _resolve(pending, result=result)


async def _next(queue: asyncio.Queue[_Pending[Job]], deadline: float) -> _Pending[Job] | None:
    """The next queued job, waiting at most until ``deadline``; None when none came."""
    if not queue.empty():
        return queue.get_nowait()
    timeout = deadline - asyncio.get_running_loop().time()
    if timeout <= 0:
        return None
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        return None


def _resolve(pending: _Pending[Job], *, result: list[Any] | None = None, error: Exception | None = None) -> None:
    # Called from the worker thread: futures belong to the loop, so hand the result over through it.
    loop = pending.future.get_loop()

    def settle() -> None:
        if pending.future.done():  # the client went away and its request was cancelled
            return
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(result or [])

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this result any more
        loop.call_soon_threadsafe(settle)
