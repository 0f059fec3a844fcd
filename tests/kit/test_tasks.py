"""Background tasks: stopping one that swallows a cancel, and periodic steps that end cleanly."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from outrigger.errors import DatabaseError
from outrigger.resilience import Retry
from outrigger.tasks import Periodic, stop_task


async def test_stop_task_stops_a_task_that_swallows_the_first_cancel() -> None:
    rounds = 0

    async def stubborn() -> None:
        nonlocal rounds
        rounds += 1
        with contextlib.suppress(asyncio.CancelledError):  # as 3.11's wait_for can
            await asyncio.sleep(10)
        rounds += 1
        await asyncio.sleep(10)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await stop_task(task, grace=0.05)
    assert task.cancelled()
    assert rounds == 2


async def test_stop_task_accepts_none_a_finished_task_and_a_failed_one() -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(fail())
    await asyncio.wait({failed})
    await stop_task(None)
    await stop_task(failed)  # retrieved, not raised
    assert isinstance(failed.exception(), RuntimeError)


async def test_periodic_runs_at_once_then_every_interval() -> None:
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1

    periodic = Periodic(step, 0.01, name="test-periodic")
    periodic.start()
    periodic.start()  # a second start is ignored
    await asyncio.sleep(0.1)
    await periodic.stop()
    assert calls >= 3
    stopped_at = calls
    await asyncio.sleep(0.05)
    assert calls == stopped_at
    assert not periodic.running


async def test_stop_lets_a_step_under_way_finish() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def step() -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.set()

    periodic = Periodic(step, 60, name="test-periodic")
    periodic.start()
    await started.wait()
    await periodic.stop()
    assert finished.is_set()


async def test_a_step_that_fails_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first step fails")

    periodic = Periodic(step, 0.01, name="test-periodic")
    periodic.start()
    for _ in range(100):
        if calls >= 2:
            break
        await asyncio.sleep(0.01)
    await periodic.stop()
    assert calls >= 2
    assert "test-periodic failed" in caplog.text


class Calls:
    """Counts a step's calls; `reach(n)` waits until there were `n`."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def tick(self) -> int:
        self.count += 1
        self._changed.set()
        return self.count

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(2):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


async def test_a_step_with_more_work_runs_again_at_once_and_wake_cuts_the_wait() -> None:
    calls = Calls()

    async def step() -> bool:
        return calls.tick() < 5  # four full batches, then caught up

    periodic = Periodic(step, 60, name="test-periodic")
    periodic.start()
    await calls.reach(5)
    await asyncio.sleep(0.02)
    assert calls.count == 5  # waiting out the interval now
    periodic.wake()
    await calls.reach(6)
    await periodic.stop()


async def test_failures_back_off_and_a_success_starts_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caps: list[float] = []
    calls = Calls()

    def uniform(low: float, high: float) -> float:
        caps.append(high)
        return 0.0

    async def step() -> None:
        if calls.tick() in (1, 2, 3, 5):
            raise DatabaseError("database unavailable: connection refused")

    backoff = Retry(attempts=1, base_delay=0.001, max_delay=0.004, uniform=uniform)
    periodic = Periodic(step, 0.001, name="test-periodic", backoff=backoff)
    periodic.start()
    await calls.reach(6)
    await periodic.stop()
    assert caps[:4] == [0.001, 0.002, 0.004, 0.001]  # doubling, capped, reset by a success
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) >= 4
    assert all(r.exc_info is None for r in warnings)  # one line each, no stack trace
    assert "database unavailable" in warnings[0].getMessage()


async def test_stop_cancels_a_step_that_outlives_the_grace() -> None:
    async def lead_forever() -> None:
        await asyncio.sleep(3600)

    periodic = Periodic(lead_forever, 1, name="test-periodic", grace=0.01)
    periodic.start()
    await asyncio.sleep(0.01)
    async with asyncio.timeout(1):
        await periodic.stop()
