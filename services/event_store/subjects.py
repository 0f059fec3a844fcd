"""Crypto-shredding: events naming a `subject` keep their `sensitive` fields encrypted at rest.

An event's metadata may say whose personal data it holds (`"subject": "user-42"`) and where
(`"sensitive": ["email", "address.*"]`, paths into `data`). Those fields are encrypted with the
subject's own key (kit `Stealth`) before the event is stored, and decrypted on every read the API
serves. Forgetting the subject deletes the key: from then on the fields read back as `ERASED`,
everywhere and for good, while the events themselves (and the log) stay intact. `sensitive`
without `subject` encrypts under the master key: protected at rest, but not erasable.

The relay publishes events as stored, so sensitive fields leave the store only as ciphertext.

Idempotent retries: encrypting the same value twice gives different ciphertext, so the storage
adapter sees a retry of a protected event as other content and answers `Conflict` naming the
event id. `ShreddingEventStore.append` then reads the stored run of events back, decrypts it and
compares it with the retried batch in plaintext: equal means a replay (the first result is
returned), anything else keeps the conflict. Looking the events up first would cost every append
a query; this costs one only when a retry of a protected batch happens.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import TYPE_CHECKING, Any

from outrigger.errors import Conflict, Gone, NotFound
from outrigger.stealth import Stealth
from services.event_store.domain import ANY, AppendResult, StreamPage
from services.event_store.domain import rules as check
from services.event_store.metrics import UNREADABLE_FIELDS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from outrigger.stealth import StealthError, SubjectKeyStore, WrappedKey
    from services.event_store.domain import (
        JSON,
        Direction,
        EventData,
        EventStore,
        ExpectedVersion,
        RecordedEvent,
        Snapshot,
        StreamInfo,
        StreamMetadata,
    )


log = logging.getLogger("outrigger.event_store.subjects")


def _sensitive(metadata: dict[str, Any]) -> list[str]:
    paths = metadata.get("sensitive")
    return paths if isinstance(paths, list) and paths else []


def _subject(metadata: dict[str, Any]) -> str | None:
    subject = metadata.get("subject")
    return subject if isinstance(subject, str) else None


def _reporter(event: RecordedEvent) -> Callable[[StealthError], None]:
    def report(error: StealthError) -> None:
        UNREADABLE_FIELDS.inc()
        log.error(
            "event %s (stream %s, version %d): %s; served as unreadable",
            event.id,
            event.stream_id,
            event.version,
            error.detail,
        )

    return report


class _BatchKeys:
    """The subject key store, each subject looked up once per batch (not once per event)."""

    def __init__(self, store: SubjectKeyStore) -> None:
        self._store = store
        self._keys: dict[str, WrappedKey | None] = {}

    async def get(self, subject: str) -> WrappedKey | None:
        if subject not in self._keys:
            self._keys[subject] = await self._store.get(subject)
        return self._keys[subject]

    async def get_or_create(self, candidate: WrappedKey) -> WrappedKey:
        key = self._keys[candidate.subject] = await self._store.get_or_create(candidate)
        return key

    async def delete(self, subject: str) -> bool:
        self._keys.pop(subject, None)
        return await self._store.delete(subject)

    async def not_wrapped_by(self, master_kid: str, limit: int) -> list[WrappedKey]:
        return await self._store.not_wrapped_by(master_kid, limit)

    async def replace(self, current: WrappedKey, new: WrappedKey) -> bool:
        return await self._store.replace(current, new)


class SubjectShredder:
    """Encrypts and decrypts the sensitive fields of events; forgets subjects."""

    def __init__(self, stealth: Stealth) -> None:
        if stealth.subject_keys is None:
            raise ValueError("crypto-shredding needs a Stealth with a subject key store")
        self._keyring = stealth.keyring
        self._keys = stealth.subject_keys

    def _batch(self) -> Stealth:
        return Stealth(self._keyring, _BatchKeys(self._keys))

    async def protect(self, events: Sequence[EventData]) -> Sequence[EventData]:
        """The events with their sensitive fields encrypted (the same sequence if none has any)."""
        if not any(_sensitive(event.metadata) for event in events):
            return events
        stealth = self._batch()
        protected = []
        for event in events:
            paths = _sensitive(event.metadata)
            if paths:
                subject = _subject(event.metadata)
                data = await stealth.obfuscate(event.data, paths, subject=subject)
                event = dataclasses.replace(event, data=data)
            protected.append(event)
        return protected

    async def reveal(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        """The events with their sensitive fields decrypted, or `ERASED` once forgotten.

        A field that cannot be decrypted (damaged, or under a key missing from the keyring) is
        served as `UNREADABLE`, logged and counted: one bad event must not stop every reader of
        the log at its position.
        """
        if not any(_sensitive(event.metadata) for event in events):
            return events
        stealth = self._batch()
        revealed = []
        for event in events:
            paths = _sensitive(event.metadata)
            if paths:
                subject = _subject(event.metadata)
                data = await stealth.deobfuscate(
                    event.data, paths, subject=subject, on_unreadable=_reporter(event)
                )
                event = dataclasses.replace(event, data=data)
            revealed.append(event)
        return revealed

    async def forget(self, subject: str) -> bool:
        """Deletes the subject's key for good; True if it had one."""
        return await self._keys.delete(subject)


class ShreddingEventStore:
    """The `EventStore` the API serves: encrypts on append, decrypts on every read."""

    def __init__(self, store: EventStore, shredder: SubjectShredder) -> None:
        self._store = store
        self._shredder = shredder

    async def append(
        self, stream_id: str, events: Sequence[EventData], expected_version: ExpectedVersion = ANY
    ) -> AppendResult:
        check.check_stream_id(stream_id)
        check.check_events(events)  # before any subject key is made for a bad request
        protected = await self._shredder.protect(events)
        try:
            return await self._store.append(stream_id, protected, expected_version)
        except Conflict as conflict:
            if protected is events:
                raise
            replay = await self._replayed(stream_id, events, conflict)
            if replay is None:
                raise
            return replay

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
            page = await self.read_stream(stream_id, from_version=first, limit=len(events))
        except (NotFound, Gone):
            return None
        stored = page.events
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
        *,
        from_version: int | None = None,
        direction: Direction = "forward",
        limit: int = 100,
    ) -> StreamPage:
        page = await self._store.read_stream(
            stream_id, from_version=from_version, direction=direction, limit=limit
        )
        revealed = await self._shredder.reveal(page.events)
        if revealed is page.events:
            return page
        return StreamPage(page.stream_id, revealed, page.next_version)

    async def read_log(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        category: str | None = None,
        event_type: str | None = None,
    ) -> list[RecordedEvent]:
        events = await self._store.read_log(
            after_position, limit, category=category, event_type=event_type
        )
        return await self._shredder.reveal(events)

    # --- the rest of the port holds no event data: passed through ---------------------------

    async def stream_info(self, stream_id: str) -> StreamInfo:
        return await self._store.stream_info(stream_id)

    async def set_metadata(self, stream_id: str, metadata: StreamMetadata) -> StreamInfo:
        return await self._store.set_metadata(stream_id, metadata)

    async def delete(
        self, stream_id: str, *, hard: bool = False, expected_version: ExpectedVersion = ANY
    ) -> None:
        await self._store.delete(stream_id, hard=hard, expected_version=expected_version)

    async def head_position(self) -> int:
        return await self._store.head_position()

    async def wait_for_log(self, after_position: int, *, max_wait: float) -> int:
        return await self._store.wait_for_log(after_position, max_wait=max_wait)

    async def save_snapshot(self, stream_id: str, version: int, state: JSON) -> Snapshot:
        return await self._store.save_snapshot(stream_id, version, state)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return await self._store.load_snapshot(stream_id)

    async def sequence_batch(self, limit: int = 10_000) -> int:
        return await self._store.sequence_batch(limit)

    async def get_checkpoint(self, name: str) -> int:
        return await self._store.get_checkpoint(name)

    async def set_checkpoint(self, name: str, position: int) -> None:
        await self._store.set_checkpoint(name, position)

    async def sequencer_delay(self) -> float | None:
        return await self._store.sequencer_delay()

    async def oldest_transaction_age(self) -> float | None:
        return await self._store.oldest_transaction_age()

    async def close(self) -> None:
        await self._store.close()
