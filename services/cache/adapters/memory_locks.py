"""Fenced locks for the in-memory cache store: the same contract as Redis, in one process.

Each method runs without awaiting between its check and its change, so it is atomic under
asyncio. Fences follow the same rule as on Redis: max(last fence + 1, wall clock in µs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.cache.adapters.waiting import wait_for_lock
from services.cache.domain import (
    MAX_LOCK_TTL_MS,
    MAX_WAIT_MS,
    Lock,
    check_range,
    check_resource,
    lock_held,
    new_token,
    not_holder,
    stale_fence,
)


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
        check_resource(resource)
        check_range("ttl_ms", ttl_ms, 1, MAX_LOCK_TTL_MS)
        check_range("wait_ms", wait_ms, 0, MAX_WAIT_MS)

        async def attempt() -> Lock | int:
            return self._try(resource, ttl_ms)

        result = await wait_for_lock(attempt, wait_ms)
        if isinstance(result, int):
            raise lock_held(resource, result)
        return result

    async def renew(self, resource: str, token: str, ttl_ms: int) -> Lock:
        check_resource(resource)
        check_range("ttl_ms", ttl_ms, 1, MAX_LOCK_TTL_MS)
        held = self._holder(resource)
        if held is None or held.token != token:
            raise not_holder(resource)
        held.until = time.monotonic() + ttl_ms / 1000
        return Lock(resource, token, held.fence, ttl_ms)

    async def release(self, resource: str, token: str) -> None:
        check_resource(resource)
        held = self._holder(resource)
        if held is None or held.token != token:
            raise not_holder(resource)
        del self._held[resource]
        self._fences[resource].released = held.fence

    async def validate_fence(self, resource: str, fence: int) -> None:
        check_resource(resource)
        check_range("fence", fence, 1, 2**63 - 1)
        latest = self._fences.get(resource, _Fences()).issued
        if fence != latest:
            raise stale_fence(resource, fence, latest)

    def sweep(self) -> None:
        """Forgets locks whose lease ran out (their fences stay)."""
        for resource in list(self._held):
            self._holder(resource)
