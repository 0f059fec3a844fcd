"""The embedded `SubjectKeyStore`: a dict, for tests and single-process runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.stealth.store import check_replacement

if TYPE_CHECKING:
    from outrigger.stealth.store import WrappedKey


class InMemorySubjectKeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, WrappedKey] = {}

    async def get(self, subject: str) -> WrappedKey | None:
        return self._keys.get(subject)

    async def get_or_create(self, candidate: WrappedKey) -> WrappedKey:
        return self._keys.setdefault(candidate.subject, candidate)

    async def delete(self, subject: str) -> bool:
        return self._keys.pop(subject, None) is not None

    async def not_wrapped_by(self, master_kid: str, limit: int) -> list[WrappedKey]:
        stale = (key for key in self._keys.values() if key.master_kid != master_kid)
        return sorted(stale, key=lambda key: key.subject)[:limit]

    async def replace(self, current: WrappedKey, new: WrappedKey) -> bool:
        check_replacement(current, new)
        if self._keys.get(current.subject) != current:
            return False
        self._keys[current.subject] = new
        return True
