"""One reader of the log's tail per process, offering each new batch to every live subscriber.

A subscriber (`Follower`) keeps the events it wants in a bounded buffer. One whose buffer stays
full (its client reads slower than events arrive) is dropped once the tail has waited
`overflow_grace` for it to make room: a burst can fill the buffer of a client that keeps up.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from typing import TYPE_CHECKING

from outrigger.errors import OutriggerError
from outrigger.tasks import Periodic
from services.event_store.domain import category

if TYPE_CHECKING:
    from services.event_store.domain import EventStore, RecordedEvent


def position(event: RecordedEvent) -> int:
    """The global position of an event read from the log (always set there)."""
    assert event.global_position is not None, "log reads carry positions"
    return event.global_position


@dataclasses.dataclass(frozen=True, slots=True)
class LogFilter:
    """Which events a subscriber wants; `category` and `event_type` also narrow store reads."""

    category: str | None = None
    event_type: str | None = None
    stream_id: str | None = None
    min_version: int = 0

    def wants(self, event: RecordedEvent) -> bool:
        return (
            (self.category is None or category(event.stream_id) == self.category)
            and (self.event_type is None or event.type == self.event_type)
            and (self.stream_id is None or (
                event.stream_id == self.stream_id and event.version >= self.min_version
            ))
        )  # fmt: skip


class Follower:
    """One subscriber's live side: a buffer of at most `max_buffered` wanted events."""

    def __init__(self, wanted: LogFilter, max_buffered: int) -> None:
        self.wanted = wanted
        self.dropped = False
        self.closed = False
        self._limit = max_buffered
        self._batches: deque[list[RecordedEvent]] = deque()
        self._buffered = 0
        self._ready = asyncio.Event()
        self._taken = asyncio.Event()

    def offer(self, events: list[RecordedEvent]) -> bool:
        """Buffers the wanted events; False (nothing buffered) when they do not fit."""
        mine = [event for event in events if self.wanted.wants(event)]
        if mine:
            if self._buffered + len(mine) > self._limit:
                return False
            self._batches.append(mine)
            self._buffered += len(mine)
            self._ready.set()
        return True

    async def drained(self, within: float) -> bool:
        """Waits at most `within` seconds for the subscriber to take a batch; True if it did."""
        self._taken.clear()
        try:
            async with asyncio.timeout(within):
                await self._taken.wait()
        except TimeoutError:
            return False
        return True

    def drop(self) -> None:
        """Ends the subscription with `dropped`: its client fell too far behind."""
        self.dropped = True
        self._batches.clear()
        self._buffered = 0
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def next(self) -> list[RecordedEvent] | None:
        """The next buffered batch; None once dropped, or closed with nothing left."""
        while not self._batches:
            if self.dropped or self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        batch = self._batches.popleft()
        self._buffered -= len(batch)
        self._taken.set()
        return batch


class LogTail:
    """Reads each new batch of the log once for every follower of this process.

    It reads only while it has followers; `position` is the last position it offered, and the
    batches it offers are contiguous from there. `start()` and `close()` in the lifespan.
    """

    def __init__(
        self, store: EventStore, *, batch_size: int, idle_wait: float, overflow_grace: float = 0.5
    ) -> None:
        self.position = 0
        self._store = store
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._grace = overflow_grace
        self._followers: set[Follower] = set()
        self._reader = Periodic(self._read, idle_wait, name="event-store-log-tail", grace=0.5)

    def start(self) -> None:
        self._reader.start()

    def join(self, follower: Follower, covered: int) -> int:
        """Adds a follower that has delivered everything up to `covered`; returns `position`.

        Batches offered from now on start right after the returned position.
        """
        if not self._followers:
            self.position = covered
            self._reader.wake()
        self._followers.add(follower)
        return self.position

    def leave(self, follower: Follower) -> None:
        self._followers.discard(follower)

    async def close(self) -> None:
        await self._reader.stop()
        for follower in self._followers:
            follower.close()
        self._followers.clear()

    async def _read(self) -> bool:
        """Offers the next batch, waiting up to `idle_wait` for one; False with no follower.

        A failure to read is the kit loop's to retry; anything else closes every subscription
        (their clients reconnect) rather than leave them waiting on a tail that cannot move.
        """
        if not self._followers:
            return False
        after = self.position
        try:
            head = await self._store.wait_for_log(after, max_wait=self._idle_wait)
            events = await self._store.read_log(after, self._batch_size) if head > after else []
        except OutriggerError:
            raise
        except Exception:
            for follower in self._followers:
                follower.close()
            self._followers.clear()
            raise
        if not events or self.position != after:  # nothing new, or restarted meanwhile
            return True
        full = [follower for follower in self._followers if not follower.offer(events)]
        # before any wait: a subscriber joining meanwhile must catch up past this batch
        self.position = position(events[-1])
        if full:
            await self._offer_when_drained(full, events)
        return True

    async def _offer_when_drained(self, full: list[Follower], events: list[RecordedEvent]) -> None:
        """Gives subscribers with full buffers `overflow_grace` seconds in all to make room;
        drops those that do not."""
        deadline = asyncio.get_running_loop().time() + self._grace
        for follower in full:
            while follower in self._followers and not follower.offer(events):
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or not await follower.drained(remaining):
                    follower.drop()
                    self._followers.discard(follower)
                    break
