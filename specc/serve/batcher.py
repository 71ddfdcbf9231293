"""Micro-batching: many concurrent requests, one grader call per batch.

Requests are queued on the event loop. A collector takes every waiting request, up
to ``max_rows`` rows; under load (the previous batch held more than one request) it
also waits up to ``max_wait_s`` for more, while a lone client's request runs at
once. The batch runs on one worker thread (graders are synchronous, and an hf model
is busy with one batch at a time), and each request's slice of the results goes back
to its own future. While a batch is graded the next requests queue up, so under load
batches fill without waiting.

>>> batcher = MicroBatcher(engine.grade_groups, max_rows=256, max_wait_s=0.005,
...                        max_queue_rows=16384)                    # doctest: +SKIP
>>> await batcher.start(); scored = await batcher.submit(rows)      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Grades a batch: one list of items per request in, one result (a list, or the
#: exception that request gets) per request out.
BatchFn = Callable[[Sequence[Sequence[T]]], Sequence[list[R] | Exception]]


class Overloaded(Exception):
    """Too many rows are waiting, or the batcher is stopping: HTTP 503."""


@dataclass
class _Pending(Generic[T, R]):
    items: Sequence[T]
    future: asyncio.Future[list[R]]


@dataclass
class BatchStats:
    """Counters the metrics read (updated on the event loop only)."""

    batches: int = 0
    rows: int = 0
    requests: int = 0
    largest: int = 0
    busy_s: float = 0.0


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        fn: BatchFn[T, R],
        *,
        max_rows: int,
        max_wait_s: float,
        max_queue_rows: int,
    ):
        self.fn = fn
        self.max_rows = max(1, max_rows)
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_queue_rows = max(1, max_queue_rows)
        self.stats = BatchStats()
        self.queued_rows = 0
        self._queue: asyncio.Queue[_Pending[T, R] | None] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="specc-grade")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_seen = False
        self._last_requests = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._collect(), name="specc-batcher")

    async def stop(self) -> None:
        """Grade what is queued, then stop (the server calls this after draining)."""
        self._stopping = True
        if self._task is not None:
            await self._queue.put(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: Sequence[T]) -> list[R]:
        """Queue one request's items; its results, in order."""
        if self._stopping or self._task is None:
            raise Overloaded("the server is shutting down")
        if self.queued_rows + len(items) > self.max_queue_rows:
            raise Overloaded(
                f"{self.queued_rows} rows are waiting to be graded (limit "
                f"{self.max_queue_rows}); retry later"
            )
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self.queued_rows += len(items)
        self._queue.put_nowait(_Pending(items, future))
        return await future

    async def _next(self, deadline: float) -> _Pending[T, R] | None:
        """The next queued request, waiting until ``deadline`` at most; None when none
        came, or when the stop marker did (``_stop_seen`` is then set)."""
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                item = await asyncio.wait_for(self._queue.get(), remaining)
            except asyncio.TimeoutError:
                return None
        if item is None:
            self._stop_seen = True
        return item

    async def _collect(self) -> None:
        while not self._stop_seen:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            rows = len(first.items)
            busy = self._last_requests > 1
            deadline = time.monotonic() + (self.max_wait_s if busy else 0.0)
            while rows < self.max_rows and not self._stop_seen:
                nxt = await self._next(deadline)
                if nxt is None:
                    break
                batch.append(nxt)
                rows += len(nxt.items)
            self.queued_rows -= rows
            await self._run(batch, rows)

    async def _run(self, batch: list[_Pending[T, R]], rows: int) -> None:
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        groups = [p.items for p in batch]
        try:
            results: Sequence[list[R] | Exception] = await loop.run_in_executor(
                self._executor, self.fn, groups
            )
        except Exception as exc:  # fn itself broke: every request in the batch fails
            results = [exc] * len(batch)
        s = self.stats
        s.batches += 1
        s.rows += rows
        s.requests += len(batch)
        s.largest = max(s.largest, rows)
        s.busy_s += time.monotonic() - t0
        self._last_requests = len(batch)
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():  # the client went away
                continue
            if isinstance(result, Exception):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)


class ThreadBatcher(Generic[T, R]):
    """Micro-batching for callers on many threads (OpenRLHF calls its reward
    function on a thread per sample): whoever takes the grading lock grades every
    waiting request, up to ``max_rows`` rows, and hands each its results.

    >>> batcher = ThreadBatcher(engine.grade_groups, max_rows=256)   # doctest: +SKIP
    >>> batcher.submit(rows)                                          # doctest: +SKIP
    """

    def __init__(self, fn: BatchFn[T, R], *, max_rows: int):
        self.fn = fn
        self.max_rows = max(1, max_rows)
        self._queue_lock = threading.Lock()
        self._grading = threading.Lock()
        self._waiting: list[_Slot[T, R]] = []

    def submit(self, items: Sequence[T]) -> list[R]:
        slot: _Slot[T, R] = _Slot(items)
        with self._queue_lock:
            self._waiting.append(slot)
        while slot.result is None:
            with self._grading:
                if slot.result is not None:  # another thread graded it meanwhile
                    break
                with self._queue_lock:
                    batch: list[_Slot[T, R]] = []
                    rows = 0
                    while self._waiting and (not batch or rows < self.max_rows):
                        batch.append(self._waiting.pop(0))
                        rows += len(batch[-1].items)
                try:
                    results: Sequence[list[R] | Exception] = self.fn([s.items for s in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for s, result in zip(batch, results, strict=True):
                    s.result = result
        if isinstance(slot.result, Exception):
            raise slot.result
        return slot.result


@dataclass
class _Slot(Generic[T, R]):
    items: Sequence[T]
    result: list[R] | Exception | None = None
