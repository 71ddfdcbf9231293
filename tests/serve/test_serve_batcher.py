"""Micro-batching: requests that arrive while a batch runs are graded together."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from specc.serve.batcher import MicroBatcher, Overloaded, ThreadBatcher


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


class Recorder:
    """A batch function that records its batches and holds the first one until
    ``release`` is set, so that requests pile up behind it."""

    def __init__(self) -> None:
        self.batches: list[list[list[int]]] = []
        self.release = threading.Event()

    def __call__(self, groups: Sequence[Sequence[int]]) -> list[list[int] | Exception]:
        if not self.batches:
            assert self.release.wait(timeout=60)
        self.batches.append([list(g) for g in groups])
        return [ValueError(f"bad {g[0]}") if g[0] < 0 else [x * 10 for x in g] for g in groups]


def test_requests_behind_a_running_batch_are_graded_together() -> None:
    fn = Recorder()

    async def run() -> list[list[int] | BaseException]:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            fn, max_rows=4, max_wait_s=0.0, max_queue_rows=100
        )
        await batcher.start()
        first = asyncio.create_task(batcher.submit([1]))
        await asyncio.sleep(0)  # submit queues it
        assert batcher.queued_rows == 1
        while batcher.queued_rows:  # the collector takes it, and fn holds it
            await asyncio.sleep(0.001)
        others = [asyncio.create_task(batcher.submit([k, k])) for k in (2, 3, -4)]
        while batcher.queued_rows < 6:
            await asyncio.sleep(0.001)
        fn.release.set()
        out = await asyncio.gather(first, *others, return_exceptions=True)
        await batcher.stop()
        return out

    first, two, three, bad = asyncio.run(run())
    assert first == [10] and two == [20, 20] and three == [30, 30]
    assert isinstance(bad, ValueError) and str(bad) == "bad -4"  # only that request fails
    # 4 rows at most a batch, whole requests only: [2, 2] + [3, 3], then [-4, -4].
    assert fn.batches == [[[1]], [[2, 2], [3, 3]], [[-4, -4]]]


def test_a_full_queue_is_refused() -> None:
    fn = Recorder()

    async def run() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            fn, max_rows=4, max_wait_s=0.0, max_queue_rows=3
        )
        await batcher.start()
        running = asyncio.create_task(batcher.submit([0]))  # held in fn
        await asyncio.sleep(0)
        while batcher.queued_rows:
            await asyncio.sleep(0.001)
        waiting = asyncio.create_task(batcher.submit([1, 2, 3]))
        await asyncio.sleep(0)
        assert batcher.queued_rows == 3
        with pytest.raises(Overloaded, match="3 rows are waiting"):
            await batcher.submit([4])
        fn.release.set()
        assert await running == [0] and await waiting == [10, 20, 30]
        await batcher.stop()
        with pytest.raises(Overloaded, match="shutting down"):
            await batcher.submit([5])

    asyncio.run(run())


def test_thread_batcher_combines_callers_on_many_threads() -> None:
    fn = Recorder()
    batcher: ThreadBatcher[int, int] = ThreadBatcher(fn, max_rows=100)
    results: dict[int, list[int] | Exception] = {}

    def call(k: int) -> None:
        try:
            results[k] = batcher.submit([k])
        except ValueError as exc:
            results[k] = exc

    first = threading.Thread(target=call, args=(1,))
    first.start()
    wait_until(batcher._grading.locked)  # the first call is grading, and held
    threads = [threading.Thread(target=call, args=(k,)) for k in (2, 3, -4, 5)]
    for t in threads:
        t.start()
    wait_until(lambda: len(batcher._waiting) == 4)
    fn.release.set()
    for t in [first, *threads]:
        t.join(timeout=60)
    assert fn.batches[0] == [[1]]
    assert sorted(g[0] for g in fn.batches[1]) == [-4, 2, 3, 5]  # one batch for all four
    assert results[2] == [20] and results[5] == [50]
    assert isinstance(results[-4], ValueError)
