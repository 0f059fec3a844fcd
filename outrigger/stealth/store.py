"""The port for per-subject data keys, stored wrapped (encrypted) by a master key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class WrappedKey:
    """A subject's data key, encrypted with the master key `master_kid` (AES-256-GCM)."""

    subject: str
    key_id: str
    master_kid: str
    wrapped: bytes = field(repr=False)


class SubjectKeyStore(Protocol):
    """Where each subject's one data key lives. Deleting it erases the subject's data for good."""

    async def get(self, subject: str) -> WrappedKey | None:
        """The subject's key, or None if it has none (never had one, or it was deleted)."""
        ...

    async def get_or_create(self, candidate: WrappedKey) -> WrappedKey:
        """The key of `candidate.subject`, storing `candidate` first if the subject has none.

        Concurrent calls for the same new subject, from any number of processes, all return the
        same key: exactly one candidate is stored, the others are discarded.
        """
        ...

    async def delete(self, subject: str) -> bool:
        """Deletes the subject's key for good; True if it had one. Deleting twice is harmless.

        Nothing the store keeps afterwards can bring the key back.
        """
        ...

    async def not_wrapped_by(self, master_kid: str, limit: int) -> list[WrappedKey]:
        """Up to `limit` keys wrapped by a master key other than `master_kid`, by subject."""
        ...

    async def replace(self, current: WrappedKey, new: WrappedKey) -> bool:
        """Stores `new` (the same data key re-wrapped) if the subject still holds `current`.

        Returns False, changing nothing, when the key was deleted or replaced meanwhile.
        `ValueError` if `new` is not for the same subject and key id.
        """
        ...


def check_replacement(current: WrappedKey, new: WrappedKey) -> None:
    if (new.subject, new.key_id) != (current.subject, current.key_id):
        raise ValueError("a replacement re-wraps the same subject's same key")


class BatchSubjectKeys:
    """A `SubjectKeyStore` for one batch of documents: each subject is looked up once (not
    once per document), then answered from memory. Make one per batch: it never forgets."""

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
