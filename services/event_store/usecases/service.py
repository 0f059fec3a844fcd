"""The event store's use cases: every request passes here once, whatever carried it.

Each method checks its arguments with `domain.rules` (the only place they are checked: the
adapters store and fetch), encrypts or reveals sensitive fields (`SubjectShredder`), emits the
audit record of a change or a reveal, and counts the domain metrics.

Idempotent retries of protected events: encrypting the same value twice gives different
ciphertext, so the storage adapter sees a retry of a protected event as other content and answers
`Conflict` naming the event id. `append` then reads the stored run back, decrypts it and compares
it with the retried batch in plaintext: equal means a replay (the first result is returned),
anything else keeps the conflict. Looking the events up first would cost every append a query;
this costs one only when a retry of a protected batch happens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outrigger.errors import Conflict, Gone, NotFound
from outrigger.telemetry import trace_context
from services.event_store.domain import AppendResult, StreamPage
from services.event_store.domain import rules as check
from services.event_store.metrics import APPENDS, CONFLICTS, EVENTS_APPENDED, REPLAYS
from services.event_store.usecases.shredding import sensitive

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outrigger.audit_trail import AuditTrail
    from services.event_store.domain import (
        JSON,
        EventData,
        EventStore,
        RecordedEvent,
        Snapshot,
        StreamInfo,
        StreamMetadata,
    )
    from services.event_store.usecases.shredding import SubjectShredder
    from services.event_store.usecases.subscriptions import LogSubscriptions

MAX_REVEALED_IDS_AUDITED = 100


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the token's subject, and whether it may see sensitive fields in clear."""

    subject: str
    reveal: bool = False


class EventStoreService:
    """The use cases of the HTTP API (and of the CLI through it)."""

    def __init__(
        self,
        store: EventStore,
        shredder: SubjectShredder,
        audit: AuditTrail,
        subscriptions: LogSubscriptions,
    ) -> None:
        self.store = store
        self.shredder = shredder
        self.audit = audit
        self.subscriptions = subscriptions

    async def append(
        self, stream_id: str, events: Sequence[EventData], expected_version: object = "any"
    ) -> AppendResult:
        """Appends the events (see `EventStore.append`), their sensitive fields encrypted."""
        check.check_stream_id(stream_id)
        expected = check.parse_expected_version(expected_version)
        check.check_events(events)  # before any subject key is made for a bad request
        protected = await self.shredder.protect(events)
        try:
            result = await self.store.append(stream_id, protected, expected, trace=trace_context())
        except Conflict as conflict:
            replay = (
                None if protected is events else await self._replayed(stream_id, events, conflict)
            )
            if replay is None:
                CONFLICTS.inc()
                raise
            result = replay
        if result.replayed:
            REPLAYS.inc()
        else:
            APPENDS.inc()
            EVENTS_APPENDED.inc(len(events))
        return result

    async def _replayed(
        self, stream_id: str, events: Sequence[EventData], conflict: Conflict
    ) -> AppendResult | None:
        """The first result if the stored run of `events` equals them in plaintext, else None."""
        clash = conflict.extensions
        if "event_id" not in clash or clash.get("stream_id") != stream_id:
            return None
        clashing = uuid.UUID(str(clash["event_id"]))
        index = next((i for i, event in enumerate(events) if event.id == clashing), None)
        if index is None or int(clash["version"]) < index:
            return None
        first = int(clash["version"]) - index
        try:
            page = await self.store.read_stream(stream_id, from_version=first, limit=len(events))
        except (NotFound, Gone):
            return None
        stored = await self.shredder.reveal(page.events)
        same = len(stored) == len(events) and all(
            (old.id, old.version, old.type, old.schema_version, old.data, old.metadata)
            == (new.id, first + i, new.type, new.schema_version, new.data, new.metadata)
            for i, (old, new) in enumerate(zip(stored, events, strict=True))
        )
        if not same:
            return None
        return AppendResult(stream_id, first, first + len(events) - 1, replayed=True)

    async def read_stream(
        self,
        stream_id: str,
        caller: Caller,
        *,
        from_version: int | None = None,
        direction: str = "forward",
        limit: int = 100,
    ) -> StreamPage:
        check.check_stream_read(stream_id, from_version, direction, limit)
        page = await self.store.read_stream(
            stream_id,
            from_version=from_version,
            direction="forward" if direction == "forward" else "backward",
            limit=limit,
        )
        shown = await self.shown(page.events, caller, stream_id)
        return page if shown is page.events else StreamPage(stream_id, shown, page.next_version)

    async def read_log(
        self,
        caller: Caller,
        after_position: int = 0,
        limit: int = 1000,
        *,
        category: str | None = None,
        event_type: str | None = None,
    ) -> tuple[list[RecordedEvent], int]:
        """A page of the log and the `after` that follows it: past the last event, and for a
        filtered page that is not full, past every position up to the head read before it (no
        match there), so a follower never reads the same stretch twice."""
        check.check_log_read(after_position, limit, category, event_type)
        filtered = category is not None or event_type is not None
        head = await self.store.head_position() if filtered else 0
        events = await self.store.read_log(
            after_position, limit, category=category, event_type=event_type
        )
        following = (events[-1].global_position or after_position) if events else after_position
        if filtered and len(events) < limit:
            following = max(following, head)
        return await self.shown(events, caller, "log"), following

    async def stream_info(self, stream_id: str) -> StreamInfo:
        return await self.store.stream_info(check.check_stream_id(stream_id))

    async def set_metadata(
        self, stream_id: str, metadata: StreamMetadata, caller: Caller
    ) -> StreamInfo:
        check.check_stream_id(stream_id)
        check.check_metadata(metadata)
        info = await self.store.set_metadata(stream_id, metadata)
        details = {
            "max_age": metadata.max_age,
            "max_count": metadata.max_count,
            "truncate_before": metadata.truncate_before,
            "custom": metadata.custom,
        }
        await self.audit.record(
            "metadata_changed", actor=caller.subject, resource=stream_id, data=details
        )
        return info

    async def delete(
        self, stream_id: str, caller: Caller, *, hard: bool, expected_version: object = "any"
    ) -> None:
        check.check_stream_id(stream_id)
        expected = check.parse_expected_version(expected_version)
        await self.store.delete(stream_id, hard=hard, expected_version=expected)
        action = "stream_tombstoned" if hard else "stream_deleted"
        details = {"hard": hard, "expected_version": str(expected)}
        await self.audit.record(action, actor=caller.subject, resource=stream_id, data=details)

    async def save_snapshot(self, stream_id: str, version: int, state: JSON) -> Snapshot:
        check.check_stream_id(stream_id)
        check.check_non_negative("version", version)
        return await self.store.save_snapshot(stream_id, version, state)

    async def load_snapshot(self, stream_id: str) -> Snapshot:
        snapshot = await self.store.load_snapshot(check.check_stream_id(stream_id))
        if snapshot is None:
            raise NotFound(
                f'stream "{stream_id}" has no snapshot; read it from the start', stream_id=stream_id
            )
        return snapshot

    async def forget_subject(self, subject: str, caller: Caller) -> None:
        """Deletes the subject's key for good (idempotent), and says so in the audit log."""
        check.check_subject(subject)
        had_key = await self.shredder.forget(subject)
        await self.audit.record(
            "subject_forgotten", actor=caller.subject, resource=subject, data={"had_key": had_key}
        )

    async def shown(
        self, events: list[RecordedEvent], caller: Caller, target: str
    ) -> list[RecordedEvent]:
        """The events as `caller` may see them: sensitive fields masked, or revealed (each
        reveal is an audit record naming the events)."""
        revealing = [event for event in events if sensitive(event.metadata)]
        if not revealing:
            return events
        if not caller.reveal:
            return self.shredder.mask(events)
        shown = await self.shredder.reveal(events)
        details: dict[str, Any] = {
            "count": len(revealing),
            "event_ids": [str(event.id) for event in revealing[:MAX_REVEALED_IDS_AUDITED]],
        }
        await self.audit.record(
            "events_revealed", actor=caller.subject, resource=target, data=details
        )
        return shown
