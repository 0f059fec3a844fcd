"""Crypto-shredding: events naming a `subject` keep their `sensitive` fields encrypted at rest.

An event's metadata may say whose personal data it holds (`"subject": "user-42"`) and where
(`"sensitive": ["email", "address.*"]`, paths into `data`). Those fields are encrypted with the
subject's own key (kit `Stealth`) before the event is stored. A reader with the reveal scope gets
them decrypted; any other reader gets `MASKED` in their place. Forgetting the subject deletes the
key: from then on the fields read back as `ERASED`, everywhere and for good, while the events
themselves (and the log) stay intact. `sensitive` without `subject` encrypts under the master
key: protected at rest, but not erasable.

The relay publishes events as stored, so sensitive fields leave the store only as ciphertext.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from outrigger.stealth import BatchSubjectKeys, Stealth, mask
from services.event_store.metrics import UNREADABLE_FIELDS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from outrigger.stealth import StealthError
    from services.event_store.domain import EventData, RecordedEvent


log = logging.getLogger("outrigger.event_store.subjects")


def sensitive(metadata: dict[str, Any]) -> list[str]:
    """The paths of `data` the event's metadata marks as sensitive (none: empty)."""
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


class SubjectShredder:
    """Encrypts and decrypts the sensitive fields of events; forgets subjects."""

    def __init__(self, stealth: Stealth) -> None:
        if stealth.subject_keys is None:
            raise ValueError("crypto-shredding needs a Stealth with a subject key store")
        self._keyring = stealth.keyring
        self._keys = stealth.subject_keys

    def _batch(self) -> Stealth:
        return Stealth(self._keyring, BatchSubjectKeys(self._keys))

    async def protect(self, events: Sequence[EventData]) -> Sequence[EventData]:
        """The events with their sensitive fields encrypted (the same sequence if none has any)."""
        if not any(sensitive(event.metadata) for event in events):
            return events
        stealth = self._batch()
        protected = []
        for event in events:
            paths = sensitive(event.metadata)
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
        if not any(sensitive(event.metadata) for event in events):
            return events
        stealth = self._batch()
        revealed = []
        for event in events:
            paths = sensitive(event.metadata)
            if paths:
                subject = _subject(event.metadata)
                data = await stealth.deobfuscate(
                    event.data, paths, subject=subject, on_unreadable=_reporter(event)
                )
                event = dataclasses.replace(event, data=data)
            revealed.append(event)
        return revealed

    def mask(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        """The events with their encrypted fields replaced by `MASKED`, no key touched."""
        if not any(sensitive(event.metadata) for event in events):
            return events
        return [
            dataclasses.replace(event, data=mask(event.data, paths))
            if (paths := sensitive(event.metadata))
            else event
            for event in events
        ]

    async def forget(self, subject: str) -> bool:
        """Deletes the subject's key for good; True if it had one."""
        return await self._keys.delete(subject)
