"""The kit's `Batcher`: items submitted one by one leave in batches, each submitter answered
with its own item's outcome once its batch was flushed."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from outrigger.bus import Ack, Batcher, Drop, Outcome, Retry
from outrigger.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence


class Store:
    """A flush that records its batches; items below 0 are refused."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail: Exception | None = None

    async def __call__(self, items: list[int]) -> Sequence[Outcome]:
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        self.batches.append(items)
        return [Drop(f"{n} is negative") if n < 0 else Ack() for n in items]


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
async def batcher(store: Store) -> AsyncIterator[Batcher[int]]:
    batcher = Batcher(store, max_size=10, max_wait=0.05)
    batcher.start()
    yield batcher
    await batcher.stop()


async def test_concurrent_items_leave_in_full_batches_in_order(
    batcher: Batcher[int], store: Store
) -> None:
    outcomes = await asyncio.gather(*(batcher.submit(n) for n in range(25)))
    assert outcomes == [Ack()] * 25
    assert store.batches == [list(range(10)), list(range(10, 20)), list(range(20, 25))]


async def test_a_lone_item_waits_at_most_max_wait(batcher: Batcher[int], store: Store) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await batcher.submit(1) == Ack()
    assert 0.04 <= loop.time() - started < 1.0
    assert store.batches == [[1]]


async def test_each_item_gets_its_own_outcome(batcher: Batcher[int]) -> None:
    outcomes = await asyncio.gather(*(batcher.submit(n) for n in (1, -2, 3)))
    assert outcomes == [Ack(), Drop("-2 is negative"), Ack()]


async def test_a_failed_flush_retries_every_item_of_its_batch(
    batcher: Batcher[int], store: Store
) -> None:
    store.fail = DatabaseError("database unavailable: gone")
    outcomes = await asyncio.gather(*(batcher.submit(n) for n in range(3)))
    assert outcomes == [Retry("database unavailable: gone")] * 3
    store.fail = None
    assert await batcher.submit(4) == Ack()


async def test_items_arriving_during_a_flush_form_the_next_batch() -> None:
    store = Store(delay=0.1)
    batcher = Batcher(store, max_size=100, max_wait=0.01)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)  # the first batch is being flushed
        rest = await asyncio.gather(*(batcher.submit(n) for n in range(1, 6)))
        assert [await first, *rest] == [Ack()] * 6
        assert store.batches == [[0], [1, 2, 3, 4, 5]]
    finally:
        await batcher.stop()


async def test_a_stopped_batcher_answers_retry() -> None:
    batcher = Batcher(Store(), max_size=10, max_wait=0.05)
    assert isinstance(await batcher.submit(1), Retry)
    batcher.start()
    await batcher.stop()
    assert isinstance(await batcher.submit(1), Retry)


def test_batches_need_a_size_and_a_wait() -> None:
    with pytest.raises(ValueError, match="max_size"):
        Batcher(Store(), max_size=0)
    with pytest.raises(ValueError, match="max_wait"):
        Batcher(Store(), max_wait=0)
