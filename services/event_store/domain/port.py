"""The storage ports of the event store: the contract every adapter keeps.

`EventStore` is what every adapter does: PostgreSQL (production) and SQLite (embedded), with one
contract test suite run against both. `SequencedLog` is what only a store whose global log is
filled after commit (PostgreSQL) does. Arguments are valid when they arrive: the use-case room
(`services.event_store.usecases`) checks every request once with `domain.rules`, and adapters
store and fetch. A backend failure is a `DatabaseError` (503, `ConnectionPoolError` when no
connection was free in time), after which the caller may retry: appends are idempotent by id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from services.event_store.domain.models import ANY

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from services.event_store.domain.models import (
        JSON,
        AppendResult,
        Direction,
        EventData,
        ExpectedVersion,
        RecordedEvent,
        Snapshot,
        StreamInfo,
        StreamMetadata,
        StreamPage,
    )


class EventStore(Protocol):
    """Streams of events with optimistic concurrency, and one gap-free global log."""

    async def append(
        self,
        stream_id: str,
        events: Sequence[EventData],
        expected_version: ExpectedVersion = ANY,
        *,
        trace: Mapping[str, str] | None = None,
    ) -> AppendResult:
        """Appends 1-1,000 events to the stream, all or nothing, as versions `version + 1 ...`.

        `trace` (the request's W3C trace context) is kept with each event and read back as
        `RecordedEvent.trace`; it takes no part in idempotency.

        `expected_version` must hold when the stream is locked (see `ExpectedVersion`), else
        `Conflict` with extension members `stream_id`, `expected_version`, `actual_version`
        (None when the stream has no events or was soft-deleted) and a detail such as
        `expected_version 4 but stream "order-7" is at 6`. A soft-deleted stream restarts on
        append (`no_stream` or `any`), numbering continuing after its last version. A tombstoned
        stream raises `Gone`.

        Idempotent: if every event id of the batch was already appended, to this stream, as one
        run of consecutive versions, with the same type, data, metadata and schema version,
        nothing is written and the first result comes back with `replayed=True` (whatever
        `expected_version` says now). If some ids are stored but the batch differs in any way,
        `Conflict` names the first clashing event id.
        """
        ...

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        direction: Direction = "forward",
        limit: int = 100,
    ) -> StreamPage:
        """Up to `limit` (1-1,000) visible events of the stream, from `from_version` inclusive.

        Forward reads start at the first visible event when `from_version` is None and go up;
        backward reads start at the last event when it is None and go down. Hidden, and never
        returned: events before a soft delete, below `truncate_before`, outside the last
        `max_count`, or created more than `max_age` seconds ago. A soft-deleted stream reads as
        empty. Unknown stream: `NotFound`; tombstoned: `Gone`. `global_position` may be None for
        events the sequencer has not moved into the log yet.
        """
        ...

    async def stream_info(self, stream_id: str) -> StreamInfo:
        """The stream's version, times, metadata and delete state; `NotFound` if unknown.

        Tombstoned and soft-deleted streams are described (with their flags), not refused.
        """
        ...

    async def set_metadata(self, stream_id: str, metadata: StreamMetadata) -> StreamInfo:
        """Replaces the stream's metadata (retention and `custom`) and returns the new info.

        A stream without events may hold metadata: it is created with `version` None. The change
        applies to every later read; no event is deleted. Tombstoned stream: `Gone`.
        """
        ...

    async def delete(
        self, stream_id: str, *, hard: bool = False, expected_version: ExpectedVersion = ANY
    ) -> None:
        """Deletes the stream, after checking `expected_version` like `append` (`Conflict`).

        Soft (`hard=False`): its events and snapshot are hidden for good, reads return nothing,
        `stream_info` says `deleted`; the next append restarts it at `version + 1`. Deleting a
        soft-deleted stream again changes nothing. Hard: the stream is tombstoned; every later
        append, read or delete is `Gone`. An unknown stream (never appended to, no metadata
        set) is `NotFound` either way, and no id is reserved by it. Events stay in the global
        log either way: the log is history, and retention, deletes and tombstones only apply to
        stream reads.
        """
        ...

    async def read_log(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        category: str | None = None,
        event_type: str | None = None,
    ) -> list[RecordedEvent]:
        """Up to `limit` (1-10,000) events of the global log with position > `after_position`.

        Positions start at 1 and are contiguous: without filters, the result holds positions
        `after_position + 1, + 2 ...` with no gap, and an event never appears at two positions.
        The order is commit order, so each stream's events come in version order. Positions are
        assigned by the sequencer, so a just-appended event may not be in the log yet (see
        `wait_for_log`). `category` and `event_type` keep only the matching events (positions
        then skip the others). Follow the log with `after_position = last position seen`.
        """
        ...

    async def head_position(self) -> int:
        """The highest position in the global log (0 when it is empty)."""
        ...

    async def wait_for_log(self, after_position: int, *, max_wait: float) -> int:
        """Waits until the log's head passes `after_position`, at most `max_wait` seconds.

        Returns the head position known at return: greater than `after_position` when new
        events can be read, otherwise the wait timed out. Wake-ups come from the sequencer's
        notification (one per sequenced batch) with a polling fallback, so a lost notification
        delays a waiter by at most the adapter's poll interval; it is a hint only, and callers
        always read by position with `read_log`. Many waiters share one listener.
        """
        ...

    async def save_snapshot(self, stream_id: str, version: int, state: JSON) -> Snapshot:
        """Stores `state` as folded from the stream's events up to `version`; the latest saved
        snapshot replaces the previous one (only one is kept per stream).

        `version` must be an existing version of the stream, appended since its last soft delete
        (`Conflict` otherwise, with `actual_version`); unknown or soft-deleted stream:
        `NotFound`; tombstoned: `Gone`. Deletes drop the snapshot.
        """
        ...

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The stream's snapshot, or None if it has none (or the stream is unknown or deleted)."""
        ...

    async def get_checkpoint(self, name: str) -> int:
        """The position stored under `name` (a relay's or subscriber's), 0 if none was stored."""
        ...

    async def set_checkpoint(self, name: str, position: int) -> None:
        """Stores `position` (>= 0) under `name`, replacing the previous value."""
        ...

    async def close(self) -> None:
        """Releases connections and background tasks. The store is unusable afterwards."""
        ...


class SequencedLog(Protocol):
    """A global log filled after commit by an elected sequencer (PostgreSQL).

    An embedded store that numbers events as it appends them (SQLite) has no such step and does
    not implement this port; nothing waits for it there.
    """

    async def sequence_batch(self, limit: int = 10_000) -> int:
        """Moves up to `limit` committed events into the global log; returns how many it moved.

        Events of transactions older than every running one get the next positions in
        (transaction id, insertion) order, with the cursor saved in the same transaction and one
        notification per non-empty batch. Only the elected sequencer calls it in production;
        concurrent calls are safe (they take turns on the cursor row) but waste work.
        """
        ...

    async def sequencer_delay(self) -> float | None:
        """Age in seconds of the oldest event not yet in the global log; None when none waits.

        A metric input: it grows when the sequencer is down or a long writing transaction holds
        the horizon back.
        """
        ...

    async def oldest_transaction_age(self) -> float | None:
        """Age in seconds of the oldest open writing transaction in the database cluster.

        A metric input: such a transaction holds the log back (not appends). None when there is
        none. The role needs `pg_read_all_stats` (or `pg_monitor`) to see other roles'
        transactions.
        """
        ...
