"""The log tail shares each new batch with every live subscriber of a process; a subscriber
whose buffer stays full past the grace is dropped, one that keeps up never is."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from services.event_store.domain import RecordedEvent
from services.event_store.usecases.log_tail import Follower, LogFilter, LogTail


class InstantLog:
    """A log that answers without ever suspending, as a fast store under a burst nearly does:
    the tail would offer batch after batch without giving subscribers a turn."""

    def __init__(self, count: int) -> None:
        now = datetime.now(UTC)
        self.events = [
            RecordedEvent("s-1", n - 1, n, uuid.uuid4(), "Burst", {"n": n}, {}, 1, now)
            for n in range(1, count + 1)
        ]

    async def wait_for_log(self, after_position: int, *, max_wait: float) -> int:
        if after_position >= len(self.events):
            await asyncio.sleep(max_wait)
        return len(self.events)

    async def read_log(self, after_position: int, limit: int, **_: Any) -> list[RecordedEvent]:
        return self.events[after_position : after_position + limit]


async def test_a_burst_of_ten_buffers_drops_the_stalled_subscriber_not_the_one_keeping_up() -> None:
    log = InstantLog(100)
    tail = LogTail(log, batch_size=10, idle_wait=0.1, overflow_grace=0.3)  # type: ignore[arg-type]
    tail.start()
    keeping_up, stalled = Follower(LogFilter(), 10), Follower(LogFilter(), 10)
    tail.join(keeping_up, 0)
    tail.join(stalled, 0)
    received: list[int] = []
    async with asyncio.timeout(5):
        while len(received) < 100:
            batch = await keeping_up.next()
            assert batch is not None, "the subscriber keeping up was dropped"
            received += [event.global_position or 0 for event in batch]
    assert received == list(range(1, 101))
    assert stalled.dropped
    assert await stalled.next() is None  # its stream ends with `dropped`
    await tail.close()


async def test_a_subscriber_joining_while_the_tail_waits_misses_nothing() -> None:
    log = InstantLog(30)
    tail = LogTail(log, batch_size=10, idle_wait=0.1, overflow_grace=0.3)  # type: ignore[arg-type]
    tail.start()
    stalled = Follower(LogFilter(), 10)
    tail.join(stalled, 0)
    async with asyncio.timeout(5):
        await asyncio.sleep(0.1)  # the second batch did not fit: the tail waits on `stalled`
        late = Follower(LogFilter(), 10)
        joined_at = tail.join(late, tail.position)
        received: list[int] = []
        while not received or received[-1] < 30:
            batch = await late.next()
            assert batch is not None
            received += [event.global_position or 0 for event in batch]
    assert received == list(range(joined_at + 1, 31))
    await tail.close()
