"""Fenced locks in this process's memory: the same contract as Redis (`LockStore`).

Each method runs without awaiting between its check and its change, so it is atomic under
asyncio. Fences follow the same rule as on Redis: max(last fence + 1, wall clock in µs). A lock
whose lease ran out is forgotten when its resource is next touched; its fences stay forever (as
on Redis), so memory grows with the number of resources ever locked, not with acquires.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.cache.adapters.waiting import wait_for_lock
from services.cache.domain import Lock, lock_held, new_token, not_holder, stale_fence


@dataclass(slots=True)
class _Held:
    token: str
    fence: int
    until: float


@dataclass(slots=True)
class _Fences:
    issued: int = 0
    released: int = 0


class MemoryLocks:
    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._fences: dict[str, _Fences] = {}

    def _holder(self, resource: str) -> _Held | None:
        held = self._held.get(resource)
        if held is not None and held.until <= time.monotonic():
            del self._held[resource]
            return None
        return held

    def _try(self, resource: str, ttl_ms: int) -> Lock | int:
        """The lock, or the holder's remaining ms."""
        if (held := self._holder(resource)) is not None:
            return max(round((held.until - time.monotonic()) * 1000), 1)
        fences = self._fences.setdefault(resource, _Fences())
        took_over = fences.issued != fences.released
        fences.issued = max(fences.issued + 1, time.time_ns() // 1000)
        token = new_token()
        self._held[resource] = _Held(token, fences.issued, time.monotonic() + ttl_ms / 1000)
        return Lock(resource, token, fences.issued, ttl_ms, took_over=took_over)

    async def acquire(self, resource: str, ttl_ms: int, wait_ms: int = 0) -> Lock:
        async def attempt() -> Lock | int:
            return self._try(resource, ttl_ms)

        result = await wait_for_lock(attempt, wait_ms)
        if isinstance(result, int):
            raise lock_held(resource, result)
        return result

    async def renew(self, resource: str, token: str, ttl_ms: int) -> Lock:
        held = self._holder(resource)
        if held is None or held.token != token:
            raise not_holder(resource)
        held.until = time.monotonic() + ttl_ms / 1000
        return Lock(resource, token, held.fence, ttl_ms)

    async def release(self, resource: str, token: str) -> None:
        held = self._holder(resource)
        if held is None or held.token != token:
            raise not_holder(resource)
        del self._held[resource]
        self._fences[resource].released = held.fence

    async def validate_fence(self, resource: str, fence: int) -> None:
        latest = self._fences.get(resource, _Fences()).issued
        if fence != latest:
            raise stale_fence(resource, fence, latest)
