"""Sensitive fields: the paths a record names in `sensitive` are stored encrypted.

They are encrypted (kit `Stealth`) before the leaf is made, so the leaf hash covers ciphertext:
verification never needs plaintext, and forgetting a subject's key (its fields read back as
`ERASED` from then on) breaks no proof. With `subject`, that subject's own key is used; without,
the master key. Readers get `MASKED` in their place (`ERASED` once the subject is forgotten);
`reveal` (scope `audit:reveal`) decrypts.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from outrigger.stealth import BatchSubjectKeys, Stealth

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from outrigger.stealth import StealthError
    from services.audit.domain.models import AuditRecord

log = logging.getLogger("outrigger.audit")


class SensitiveFields:
    def __init__(self, stealth: Stealth) -> None:
        self._stealth = stealth

    def _batch(self) -> Stealth:
        """The stealth of one batch: each subject's key is looked up once in it."""
        keys = self._stealth.subject_keys
        return Stealth(self._stealth.keyring, keys and BatchSubjectKeys(keys))

    async def protect(self, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        """The records with their sensitive fields encrypted."""
        if not any(record.sensitive and record.data for record in records):
            return list(records)
        stealth = self._batch()
        protected = []
        for record in records:
            if record.sensitive and record.data:
                data = await stealth.obfuscate(
                    record.data, record.sensitive, subject=record.subject
                )
                record = dataclasses.replace(record, data=data)
            protected.append(record)
        return protected

    async def mask(self, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        """The records with their encrypted fields replaced by `MASKED`, or `ERASED` where their
        subject was forgotten; nothing decrypted, each subject's key looked up once."""
        if not any(record.sensitive for record in records):
            return list(records)
        stealth = self._batch()
        masked = []
        for record in records:
            if record.sensitive:
                data = await stealth.mask(record.data, record.sensitive, subject=record.subject)
                record = dataclasses.replace(record, data=data)
            masked.append(record)
        return masked

    async def reveal(self, record: AuditRecord) -> AuditRecord:
        """The record in clear: `ERASED` where its subject was forgotten, `UNREADABLE` (logged)
        where a field cannot be decrypted."""
        if not record.sensitive:
            return record
        data = await self._stealth.deobfuscate(
            record.data,
            record.sensitive,
            subject=record.subject,
            on_unreadable=_reporter(record),
        )
        return dataclasses.replace(record, data=data)

    async def forget(self, subject: str) -> bool:
        """Deletes the subject's key for good (True if it had one): every field encrypted under
        it reads `ERASED` from now on, masked or revealed. The leaves keep the ciphertext, so no
        hash, proof or checkpoint changes."""
        return await self._stealth.forget(subject)


def _reporter(record: AuditRecord) -> Callable[[StealthError], None]:
    def report(error: StealthError) -> None:
        log.error(
            "audit record %s from %s: %s; served as unreadable", record.id, record.source, error
        )

    return report
