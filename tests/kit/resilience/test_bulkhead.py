from __future__ import annotations

import asyncio

import pytest

from outrigger import errors
from outrigger.resilience import Bulkhead, BulkheadFull
from tests.kit.resilience.support import sample


class Work:
    """Calls that block until released, recording how many ran at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.peak = 0
        self.order: list[int] = []

    async def __call__(self, number: int) -> int:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.order.append(number)
        try:
            await self.release.wait()
            await asyncio.sleep(0)
        finally:
            self.running -= 1
        return number


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_never_more_than_the_limit_run_at_once(name: str) -> None:
    bulkhead = Bulkhead(name, max_concurrent=5, max_queue=50)
    work = Work()

    calls = [asyncio.create_task(bulkhead.call(work, n)) for n in range(50)]
    await settle()
    assert (bulkhead.running, bulkhead.queued, work.running) == (5, 45, 5)
    work.release.set()

    assert await asyncio.gather(*calls) == list(range(50))
    assert work.peak == 5
    assert work.order == list(range(50))
    assert (bulkhead.running, bulkhead.queued) == (0, 0)


async def test_calls_beyond_the_queue_are_refused_at_once(name: str) -> None:
    bulkhead = Bulkhead(name, max_concurrent=5, max_queue=10)
    work = Work()

    calls = [asyncio.create_task(bulkhead.call(work, n)) for n in range(50)]
    await settle()
    refused = [call for call in calls if call.done()]
    assert len(refused) == 35
    for call in refused:
        error = call.exception()
        assert isinstance(error, BulkheadFull)
        assert isinstance(error, errors.InfrastructureError)
        assert f'bulkhead "{name}" is full' in error.detail
        assert error.headers["Retry-After"] == "1"
    assert sample("outrigger_resilience_rejections_total", name=name, reason="bulkhead_full") == 35

    work.release.set()
    assert await asyncio.gather(*(c for c in calls if c not in refused)) == list(range(15))
    assert work.peak == 5


async def test_without_a_queue_the_first_call_over_the_limit_is_refused(name: str) -> None:
    bulkhead = Bulkhead(name, max_concurrent=1)
    work = Work()
    running = asyncio.create_task(bulkhead.call(work, 1))
    await settle()

    with pytest.raises(BulkheadFull, match="1 calls running and 0 waiting"):
        await bulkhead.call(work, 2)

    work.release.set()
    assert await running == 1


async def test_a_call_that_waits_longer_than_max_wait_is_refused(name: str) -> None:
    bulkhead = Bulkhead(name, max_concurrent=1, max_queue=5, max_wait=0.01)
    work = Work()
    running = asyncio.create_task(bulkhead.call(work, 1))
    await settle()

    with pytest.raises(BulkheadFull, match=r"no slot freed within 0.01 s"):
        await bulkhead.call(work, 2)

    assert bulkhead.queued == 0
    work.release.set()
    assert await running == 1
    assert await bulkhead.call(work, 3) == 3


async def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_slot(name: str) -> None:
    bulkhead = Bulkhead(name, max_concurrent=1, max_queue=5)
    work = Work()
    running = asyncio.create_task(bulkhead.call(work, 1))
    waiting = asyncio.create_task(bulkhead.call(work, 2))
    await settle()
    assert bulkhead.queued == 1

    waiting.cancel()
    await settle()
    assert bulkhead.queued == 0
    work.release.set()
    await running

    assert bulkhead.running == 0
    assert await bulkhead.call(work, 3) == 3


async def test_a_waiter_cancelled_just_as_its_turn_came_passes_the_slot_on(name: str) -> None:
    bulkhead = Bulkhead(name, max_concurrent=1, max_queue=5)
    work = Work()
    holder = bulkhead.slot()
    await holder.__aenter__()
    unlucky = asyncio.create_task(bulkhead.call(work, 1))
    next_in_line = asyncio.create_task(bulkhead.call(work, 2))
    await settle()

    await holder.__aexit__(None, None, None)
    unlucky.cancel()
    work.release.set()

    assert await next_in_line == 2
    assert unlucky.cancelled()
    assert work.order == [2]
    assert (bulkhead.running, bulkhead.queued) == (0, 0)


async def test_a_failing_call_frees_its_slot(name: str) -> None:
    bulkhead = Bulkhead(name, max_concurrent=1)

    async def broken() -> None:
        raise errors.CacheError("cache unavailable")

    for _ in range(3):
        with pytest.raises(errors.CacheError):
            await bulkhead.call(broken)

    assert bulkhead.running == 0


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        Bulkhead("x", max_concurrent=0)
