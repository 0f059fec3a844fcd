"""Subscriptions to the global log: catch up from the store, then follow the shared `LogTail`.

A subscriber first reads the log itself, at its own pace (catch-up), up to a position it knows it
has covered. It then joins the tail, which offers it each new batch. The switch has no gap and no
duplicate: if the tail is ahead, the subscriber reads the part between from the store first;
events it already sent are skipped by position. A subscriber the tail drops for falling behind
gets a final `Dropped` naming the position to resume after; resuming there continues exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from outrigger.errors import InfrastructureError, NotFound
from services.event_store.domain import category
from services.event_store.domain import rules as check
from services.event_store.metrics import SUBSCRIBERS
from services.event_store.usecases.log_tail import Follower, LogFilter, position

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from services.event_store.domain import EventStore, RecordedEvent
    from services.event_store.usecases.log_tail import LogTail

    Show = Callable[[list[RecordedEvent]], Awaitable[list[RecordedEvent]]]

SEQUENCING_WAIT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Live:
    """Catch-up is over: everything up to `position` was delivered; live events follow."""

    position: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """The subscriber fell too far behind and the subscription ends; resume after `resume_after`."""

    reason: str
    resume_after: int


Item: TypeAlias = "list[RecordedEvent] | Live | Dropped"


class LogSubscriptions:
    """Opens subscriptions: checks the request, then yields batches of events and markers."""

    def __init__(
        self, store: EventStore, tail: LogTail, *, batch_size: int, max_buffered: int
    ) -> None:
        self._store = store
        self._tail = tail
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
        check.check_stream_read(stream_id, from_version, "forward", 1)
        wanted = LogFilter(category(stream_id), None, stream_id)
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
        deadline = SEQUENCING_WAIT_SECONDS
        while event.global_position is None:
            if deadline <= 0:
                raise InfrastructureError(
                    f"event {event.id} is not in the global log after {SEQUENCING_WAIT_SECONDS:.0f}"
                    " s; is the sequencer running?"
                )
            head = await self._store.head_position()
            deadline -= 1.0
            await self._store.wait_for_log(head, max_wait=1.0)
            page = await self._store.read_stream(
                event.stream_id, from_version=event.version, limit=1
            )
            event = page.events[0] if page.events else event
        return event.global_position - 1

    async def items(self, wanted: LogFilter, after: int, show: Show) -> AsyncIterator[Item]:
        """The wanted events with positions above `after`, as `show` lets the subscriber see
        them, in batches; `Live` once caught up; `Dropped` last if the client fell behind."""
        check.check_non_negative("start position", after)
        SUBSCRIBERS.inc()
        try:
            sent = covered = after
            async for batch, reached in self._catch_up(wanted, after, None):
                if batch:
                    yield await show(batch)
                    sent = position(batch[-1])
                covered = reached
            follower = Follower(wanted, self._max_buffered)
            # joined at the head at most: a start beyond it (a position from another store) would
            # move the shared tail there and hold back every other subscriber of this process
            head = await self._store.head_position()
            tail_at = self._tail.join(follower, min(covered, head))
            try:
                async for batch, reached in self._catch_up(wanted, covered, tail_at):
                    if batch:
                        yield await show(batch)
                        sent = position(batch[-1])
                    covered = reached
                yield Live(covered)
                while (live := await follower.next()) is not None:
                    fresh = [event for event in live if position(event) > covered]
                    if fresh:
                        yield await show(fresh)
                        sent = covered = position(fresh[-1])
                if follower.dropped:
                    reason = f"the client fell more than {self._max_buffered} events behind"
                    yield Dropped(reason, sent)
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
