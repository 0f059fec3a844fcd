"""Server-Sent Events over the global log: catch up from the store, then follow one shared tail.

A subscriber first reads the log itself, at its own pace (catch-up), up to a position it knows it
has covered. It then joins the `LogTail`: one task per process that reads each new batch of the
log once and offers it to every live subscriber, which keeps the events it wants in a bounded
buffer. The switch has no gap and no duplicate: if the tail is ahead, the subscriber reads the
part between from the store first; events it already sent are skipped by position.

A subscriber whose buffer stays full (its client reads slower than events arrive) is dropped once
the tail has waited `overflow_grace` for it to make room (a burst can fill the buffer of a client
that keeps up): it gets a final `dropped` event naming the position to resume after and the
stream ends; reconnecting with `Last-Event-ID` continues exactly there. Every event's SSE `id` is
its global position. One `live` event (no id) marks the end of catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from outrigger.errors import InfrastructureError, NotFound, OutriggerError
from services.event_store.domain import category
from services.event_store.domain import rules as check
from services.event_store.metrics import SUBSCRIBERS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from services.event_store.domain import EventStore, RecordedEvent

    Reveal = Callable[[list[RecordedEvent]], Awaitable[list[RecordedEvent]]]

SEQUENCING_WAIT_SECONDS = 30.0
SEQUENCING_POLL_SECONDS = 0.05
log = logging.getLogger("outrigger.event_store.subscriptions")


def position(event: RecordedEvent) -> int:
    """The global position of an event read from the log (always set there)."""
    assert event.global_position is not None, "log reads carry positions"
    return event.global_position


def event_document(event: RecordedEvent) -> dict[str, Any]:
    """An event as the API writes it (the same fields as `api.models.EventOut`)."""
    return {
        "stream_id": event.stream_id,
        "version": event.version,
        "global_position": event.global_position,
        "id": event.id,
        "type": event.type,
        "data": event.data,
        "metadata": event.metadata,
        "schema_version": event.schema_version,
        "created": event.created,
    }


def sse_event(event: RecordedEvent) -> bytes:
    return b"id: %d\ndata: %b\n\n" % (
        position(event),
        orjson.dumps(event_document(event), option=orjson.OPT_UTC_Z),
    )


def sse_control(name: str, data: dict[str, Any]) -> bytes:
    return b"event: %b\ndata: %b\n\n" % (name.encode(), orjson.dumps(data))


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

    It runs only while it has followers; `position` is the last position it offered, and the
    batches it offers are contiguous from there.
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
        self._task: asyncio.Task[None] | None = None

    def join(self, follower: Follower, covered: int) -> int:
        """Adds a follower that has delivered everything up to `covered`; returns `position`.

        Batches offered from now on start right after the returned position.
        """
        if not self._followers:
            self.position = covered
        self._followers.add(follower)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-store-log-tail")
        return self.position

    def leave(self, follower: Follower) -> None:
        self._followers.discard(follower)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for follower in self._followers:
            follower.close()
        self._followers.clear()

    async def _offer_when_drained(self, full: list[Follower], events: list[RecordedEvent]) -> None:
        """Gives subscribers with full buffers `overflow_grace` seconds in all to make room (a
        burst can fill the buffer of one that keeps up); drops those that do not."""
        deadline = asyncio.get_running_loop().time() + self._grace
        for follower in full:
            while follower in self._followers and not follower.offer(events):
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or not await follower.drained(remaining):
                    follower.drop()
                    self._followers.discard(follower)
                    break

    async def _run(self) -> None:
        try:
            while self._followers:
                after = self.position
                try:
                    head = await self._store.wait_for_log(after, max_wait=self._idle_wait)
                    events = (
                        await self._store.read_log(after, self._batch_size) if head > after else []
                    )
                except OutriggerError as exc:
                    log.warning("the log tail cannot read the log (%s); retrying", exc.detail)
                    await asyncio.sleep(self._idle_wait)
                    continue
                if not events or self.position != after:  # nothing new, or restarted meanwhile
                    continue
                full = [follower for follower in self._followers if not follower.offer(events)]
                # before any wait: a subscriber joining meanwhile must catch up past this batch
                self.position = position(events[-1])
                if full:
                    await self._offer_when_drained(full, events)
        except Exception:
            log.exception("the log tail failed; closing its subscriptions")
            for follower in self._followers:
                follower.close()
            self._followers.clear()
        finally:
            self._task = None


class LogSubscriptions:
    """Opens subscriptions: checks the request, then streams SSE bytes (see module docstring)."""

    def __init__(
        self,
        store: EventStore,
        tail: LogTail,
        reveal: Reveal,
        *,
        batch_size: int,
        max_buffered: int,
    ) -> None:
        self._store = store
        self._tail = tail
        self._reveal = reveal
        self._batch_size = batch_size
        self._max_buffered = max_buffered

    def log_filter(self, category: str | None, event_type: str | None) -> LogFilter:
        """The filter of a log subscription, or `InvalidInput` for a bad category or type."""
        if category is not None:
            check.check_name("category", category)
        if event_type is not None:
            check.check_event_type(event_type)
        return LogFilter(category=category, event_type=event_type)

    async def stream_start(self, stream_id: str, from_version: int | None) -> tuple[LogFilter, int]:
        """The filter of a stream subscription and the position to follow the log after.

        The subscription starts at the first visible event at or after `from_version`; a stream
        with none yet (or none at all) starts at the head, waiting for its next event. A
        tombstoned stream is `Gone`.
        """
        wanted = LogFilter(category(check.check_stream_id(stream_id)), None, stream_id)
        head = await self._store.head_position()
        try:
            page = await self._store.read_stream(stream_id, from_version=from_version, limit=1)
        except NotFound:
            page = None
        if page is None or not page.events:
            return dataclasses.replace(wanted, min_version=from_version or 0), head
        first = page.events[0]
        return dataclasses.replace(wanted, min_version=first.version), await self._sequenced(first)

    async def _sequenced(self, event: RecordedEvent) -> int:
        """The position just before `event`, waiting for the sequencer to give it one."""
        waited = 0.0
        while event.global_position is None:
            if waited > SEQUENCING_WAIT_SECONDS:
                raise InfrastructureError(
                    f"event {event.id} is not in the global log after {waited:.0f} s; "
                    "is the sequencer running?"
                )
            await asyncio.sleep(SEQUENCING_POLL_SECONDS)
            waited += SEQUENCING_POLL_SECONDS
            page = await self._store.read_stream(
                event.stream_id, from_version=event.version, limit=1
            )
            event = page.events[0] if page.events else event
        return event.global_position - 1

    async def events(self, wanted: LogFilter, after: int) -> AsyncIterator[bytes]:
        """The SSE stream of the wanted events with positions above `after`."""
        SUBSCRIBERS.inc()
        try:
            sent = covered = after
            async for batch, reached in self._catch_up(wanted, after, None):
                for event in await self._reveal(batch):
                    yield sse_event(event)
                    sent = position(event)
                covered = reached
            follower = Follower(wanted, self._max_buffered)
            # joined at the head at most: a start beyond it (a position from another store) would
            # move the shared tail there and hold back every other subscriber of this process
            head = await self._store.head_position()
            tail_at = self._tail.join(follower, min(covered, head))
            try:
                async for batch, reached in self._catch_up(wanted, covered, tail_at):
                    for event in await self._reveal(batch):
                        yield sse_event(event)
                        sent = position(event)
                    covered = reached
                yield sse_control("live", {"position": covered})
                while (live := await follower.next()) is not None:
                    fresh = [event for event in live if position(event) > covered]
                    for event in await self._reveal(fresh):
                        yield sse_event(event)
                        sent = covered = position(event)
                if follower.dropped:
                    reason = f"the client fell more than {self._max_buffered} events behind"
                    yield sse_control("dropped", {"reason": reason, "resume_after": sent})
            finally:
                self._tail.leave(follower)
        finally:
            SUBSCRIBERS.dec()

    async def _catch_up(
        self, wanted: LogFilter, after: int, until: int | None
    ) -> AsyncIterator[tuple[list[RecordedEvent], int]]:
        """Batches of wanted events after `after` read from the store, each with the position
        covered so far; it ends at `until`, else at the head seen when the last page began."""
        while True:
            head = until if until is not None else await self._store.head_position()
            if head <= after:
                return
            events = await self._store.read_log(
                after, self._batch_size, category=wanted.category, event_type=wanted.event_type
            )
            below = [event for event in events if position(event) <= head]
            full = len(below) == self._batch_size
            after = position(below[-1]) if full else head
            yield [event for event in below if wanted.wants(event)], after
            if not full:
                return
