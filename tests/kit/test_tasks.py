"""Background tasks: stopping one that swallows a cancel, and periodic steps that end cleanly."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

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
