"""The embedded cache store: the same contract as Redis, held in this process's memory.

A real implementation, not a test double: TTLs run on the monotonic clock, expired entries go
when they are next touched or when the sweep (every `sweep_interval_seconds`, from a heap of
expiry times) reaches them, and tags are exact indexes, so tag invalidation never scans. No method
awaits between reading and changing state, which makes each one atomic under asyncio. Nothing is
bounded but TTLs: size the namespaces' maxima for the memory you have.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from outrigger.tasks import Periodic
from services.cache.adapters.waiting import wait_for_fill
from services.cache.domain import (
    MAX_LEASE_MS,
    UNCONDITIONAL,
    Entry,
    FillLease,
    Lookup,
    StoreStats,
    Write,
    WriteCondition,
    lease_not_held,
    lease_outdated,
    new_token,
    precondition_failed,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


@dataclass(slots=True)
class _Stored:
    entry: Entry
    fresh_until: float
    gone_at: float

    def read(self, now: float) -> Entry:
        ttl_ms = max(int((self.fresh_until - now) * 1000), 0)
        return replace(self.entry, ttl_ms=ttl_ms, stale=now >= self.fresh_until)


@dataclass(slots=True)
class _Lease:
    token: str
    granted: float
    until: float


class MemoryCacheStore:
    def __init__(self, *, sweep_interval_seconds: float = 1.0) -> None:
        self._sweeper = Periodic(self._sweep, sweep_interval_seconds, name="cache-memory-sweep")
        self._entries: dict[tuple[str, str], _Stored] = {}
        self._tags: dict[tuple[str, str], set[str]] = {}
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._marks: dict[tuple[str, str], float] = {}
        self._namespaces: set[str] = set()
        self._expiries: list[tuple[float, str, str, str]] = []
        self._expired = 0

    async def start(self) -> None:
        self._sweeper.start()

    async def close(self) -> None:
        await self._sweeper.stop()

    async def check(self) -> None:
        """Always ready: the data lives in this process."""

    async def stats(self) -> StoreStats:
        return StoreStats(expired_keys=self._expired, evicted_keys=0)

    def _live(self, namespace: str, key: str, now: float) -> _Stored | None:
        stored = self._entries.get((namespace, key))
        if stored is not None and stored.gone_at <= now:
            self._expired += 1
            self._drop(namespace, key, void_lease=False)
            return None
        return stored

    def _fresh(self, namespace: str, key: str, now: float) -> _Stored | None:
        stored = self._live(namespace, key, now)
        return stored if stored is not None and now < stored.fresh_until else None

    def _drop(self, namespace: str, key: str, *, void_lease: bool = True) -> bool:
        """Removes the entry and its tag index entries; True if there was one."""
        if void_lease:
            self._leases.pop((namespace, key), None)
        stored = self._entries.pop((namespace, key), None)
        if stored is None:
            return False
        for tag in stored.entry.tags:
            keys = self._tags.get((namespace, tag))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[(namespace, tag)]
        return True

    def _store(self, namespace: str, write: Write, now: float) -> Entry:
        assert write.ttl_ms is not None
        self._drop(namespace, write.key)
        entry = Entry(
            key=write.key,
            value=write.value,
            content_type=write.content_type,
            version=new_token(),
            tags=frozenset(write.tags),
            created=datetime.now(UTC),
            ttl_ms=write.ttl_ms,
            swr_ms=write.swr_ms,
        )
        fresh_until = now + write.ttl_ms / 1000
        gone_at = fresh_until + write.swr_ms / 1000
        self._entries[(namespace, write.key)] = _Stored(entry, fresh_until, gone_at)
        for tag in entry.tags:
            self._tags.setdefault((namespace, tag), set()).add(write.key)
            self._namespaces.add(namespace)
        heapq.heappush(self._expiries, (gone_at, namespace, write.key, entry.version))
        return entry

    async def get(self, namespace: str, key: str, *, allow_stale: bool = False) -> Entry | None:
        now = time.monotonic()
        stored = (
            self._live(namespace, key, now) if allow_stale else self._fresh(namespace, key, now)
        )
        return None if stored is None else stored.read(now)

    async def put(
        self, namespace: str, write: Write, condition: WriteCondition = UNCONDITIONAL
    ) -> Entry:
        now = time.monotonic()
        current = self._fresh(namespace, write.key, now)
        version = None if current is None else current.entry.version
        if not condition.holds(version):
            raise precondition_failed(namespace, write.key, condition, version)
        return self._store(namespace, write, now)

    async def delete(
        self, namespace: str, key: str, condition: WriteCondition = UNCONDITIONAL
    ) -> bool:
        now = time.monotonic()
        current = self._fresh(namespace, key, now)
        version = None if current is None else current.entry.version
        if condition.if_match is not None and condition.if_match != version:
            raise precondition_failed(namespace, key, condition, version)
        self._live(namespace, key, now)
        return self._drop(namespace, key)

    async def mget(self, namespace: str, keys: Sequence[str]) -> list[Entry | None]:
        now = time.monotonic()
        found = [self._fresh(namespace, key, now) for key in keys]
        return [None if stored is None else stored.read(now) for stored in found]

    async def mset(self, namespace: str, writes: Sequence[Write]) -> list[Entry]:
        now = time.monotonic()
        return [self._store(namespace, write, now) for write in writes]

    async def invalidate_tags(self, namespace: str | None, tags: Iterable[str]) -> int:
        tags = list(tags)
        now = time.monotonic()
        removed = 0
        for ns in [namespace] if namespace is not None else sorted(self._namespaces):
            for tag in tags:
                for key in list(self._tags.get((ns, tag), ())):
                    self._live(ns, key, now)
                    removed += self._drop(ns, key)
                self._marks[(ns, tag)] = now
        return removed

    async def invalidate_prefix(self, namespace: str, prefix: str) -> int:
        now = time.monotonic()
        removed = 0
        for ns, key in [*self._entries, *self._leases]:
            if ns == namespace and key.startswith(prefix):
                self._live(ns, key, now)
                removed += self._drop(ns, key)
        return removed

    def _lookup(self, namespace: str, key: str, lease_ms: int) -> Lookup:
        now = time.monotonic()
        stored = self._live(namespace, key, now)
        entry = None if stored is None else stored.read(now)
        if entry is not None and not entry.stale:
            return Lookup(entry)
        lease = self._leases.get((namespace, key))
        if lease is not None and lease.until > now:
            return Lookup(entry, retry_after_ms=max(round((lease.until - now) * 1000), 1))
        token = new_token()
        self._leases[(namespace, key)] = _Lease(token, now, now + lease_ms / 1000)
        self._namespaces.add(namespace)
        return Lookup(entry, FillLease(token, lease_ms))

    async def acquire_fill_lease(
        self, namespace: str, key: str, *, lease_ms: int, wait_ms: int = 0
    ) -> Lookup:
        async def attempt() -> Lookup:
            return self._lookup(namespace, key, lease_ms)

        return await wait_for_fill(attempt, wait_ms)

    async def fill(self, namespace: str, write: Write, lease_token: str) -> Entry:
        now = time.monotonic()
        lease = self._leases.get((namespace, write.key))
        if lease is None or lease.token != lease_token or lease.until <= now:
            raise lease_not_held(namespace, write.key)
        for tag in sorted(write.tags):
            if self._marks.get((namespace, tag), -1.0) >= lease.granted:
                del self._leases[(namespace, write.key)]
                raise lease_outdated(namespace, write.key, tag)
        return self._store(namespace, write, now)

    def sweep(self) -> None:
        """Removes what expired: entries (from the heap), leases and old invalidation marks."""
        now = time.monotonic()
        while self._expiries and self._expiries[0][0] <= now:
            _, namespace, key, version = heapq.heappop(self._expiries)
            stored = self._entries.get((namespace, key))
            if stored is not None and stored.entry.version == version:
                self._live(namespace, key, now)
        if len(self._expiries) > 2 * len(self._entries) + 1024:
            self._expiries = [
                (s.gone_at, ns, key, s.entry.version) for (ns, key), s in self._entries.items()
            ]
            heapq.heapify(self._expiries)
        for place in [place for place, lease in self._leases.items() if lease.until <= now]:
            del self._leases[place]
        oldest = now - MAX_LEASE_MS / 1000
        for place in [place for place, at in self._marks.items() if at <= oldest]:
            del self._marks[place]

    async def _sweep(self) -> None:
        self.sweep()
