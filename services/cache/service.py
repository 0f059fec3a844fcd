"""The cache's use cases: every request passes here once, between the API (or the consumer)
and the ports.

Each use case applies the domain rules to its request (`domain.rules`: names, keys, tags,
content types, sizes, the namespace's TTL policy, batch rules) before any port is called, so bad
input changes nothing and adapters never check again; then it counts the domain metrics
(`CacheMetrics`) and emits the audit records. What the API hands over is parsed already: typed,
with numbers inside the ranges its schema declares (a lease of 1-60,000 ms, a TTL in whole ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from outrigger.errors import Conflict
from services.cache.domain import (
    UNCONDITIONAL,
    check_delete_condition,
    check_key,
    check_keys,
    check_namespace,
    check_prefix,
    check_resource,
    invalidation_tags,
    precondition_failed,
    valid_tag,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outrigger.audit_trail import AuditTrail
    from outrigger.bus import CloudEvent
    from services.cache.domain import (
        CacheLimits,
        CacheStore,
        Entry,
        Lock,
        LockStore,
        Lookup,
        Write,
        WriteCondition,
    )
    from services.cache.metrics import CacheMetrics

SERVICE = "cache"  # the actor of the audit records of invalidations no caller asked for


def stream_tag(stream_id: str) -> str:
    """The tag a client puts on entries built from stream `stream_id`."""
    return f"stream:{stream_id}"


@dataclass(frozen=True, slots=True)
class CacheService:
    """Entries: read, write, fill, delete, batches and invalidation."""

    store: CacheStore
    limits: CacheLimits
    audit: AuditTrail
    metrics: CacheMetrics

    async def read(self, namespace: str, key: str) -> Entry | None:
        """The fresh entry, or None (a hit or a miss of the namespace)."""
        check_namespace(namespace)
        check_key(key)
        entry = await self.store.get(namespace, key)
        self.metrics.looked_up(namespace, entry is not None, entry is None)
        return entry

    async def read_or_lease(
        self, namespace: str, key: str, *, lease_ms: int, wait_ms: int
    ) -> Lookup:
        """A read with stampede protection (`CacheStore.acquire_fill_lease`)."""
        check_namespace(namespace)
        check_key(key)
        found = await self.store.acquire_fill_lease(
            namespace, key, lease_ms=lease_ms, wait_ms=wait_ms
        )
        entry, lease = found.entry, found.lease
        fresh = entry is not None and not entry.stale
        self.metrics.looked_up(namespace, fresh, not fresh)
        if lease is not None:
            self.metrics.lease_granted(namespace)
        if entry is not None and entry.stale:
            self.metrics.stale_served(namespace)
        if not found.settled:
            self.metrics.told_to_wait(namespace)
        return found

    async def write(
        self,
        namespace: str,
        write: Write,
        condition: WriteCondition = UNCONDITIONAL,
        *,
        fill_lease: str | None = None,
    ) -> Entry:
        """Stores `write` if `condition` holds; with `fill_lease`, fills the key that lease
        guards. A fill lease exists only while its key has no fresh entry, so with a fill
        `if_none_match_any` always holds and `if_match` never does (412)."""
        write = self.limits.prepare(namespace, write)
        if condition.contradictory:
            current = await self.store.get(namespace, write.key)
            version = None if current is None else current.version
            raise precondition_failed(namespace, write.key, condition, version)
        if fill_lease is None:
            return await self.store.put(namespace, write, condition)
        if condition.if_match is not None:
            raise precondition_failed(namespace, write.key, condition, None)
        return await self.store.fill(namespace, write, fill_lease)

    async def delete(
        self, namespace: str, key: str, condition: WriteCondition, *, actor: str
    ) -> bool:
        """Removes the entry if `condition` holds; True (and audited) if there was one."""
        check_namespace(namespace)
        check_key(key)
        check_delete_condition(condition)
        removed = await self.store.delete(namespace, key, condition)
        if removed:
            await self.audit.record("delete", actor=actor, resource=f"{namespace}/{key}")
        return removed

    async def read_many(self, namespace: str, keys: Sequence[str]) -> list[Entry | None]:
        check_namespace(namespace)
        check_keys(keys)
        entries = await self.store.mget(namespace, keys)
        hits = sum(entry is not None for entry in entries)
        self.metrics.looked_up(namespace, hits, len(entries) - hits)
        return entries

    async def write_many(self, namespace: str, writes: Sequence[Write]) -> list[Entry]:
        """Stores every write or, when one breaks a rule, none."""
        return await self.store.mset(namespace, self.limits.prepare_batch(namespace, writes))

    async def invalidate(
        self,
        namespace: str,
        *,
        tags: Sequence[str] | None = None,
        prefix: str | None = None,
        actor: str,
    ) -> int:
        """Removes the entries carrying any of `tags`, or else those whose key starts with
        `prefix`; returns how many, and audits who asked."""
        check_namespace(namespace)
        how: dict[str, Any]
        if tags is not None:
            distinct = invalidation_tags(tags)
            removed = await self.store.invalidate_tags(namespace, distinct)
            how = {"tags": distinct}
        else:
            prefix = prefix or ""
            check_prefix(prefix)
            removed = await self.store.invalidate_prefix(namespace, prefix)
            how = {"prefix": prefix}
        self.metrics.invalidated("api", removed)
        await self.audit.record(
            "invalidate", actor=actor, resource=namespace, data={"removed": removed, **how}
        )
        return removed

    async def invalidate_stream(self, event: CloudEvent) -> int:
        """An event on stream S (its `subject`) removes the entries tagged `stream:S` in every
        namespace; audited when any was removed. An event that names no stream, or one no tag
        can carry, removes nothing."""
        if not event.subject or not valid_tag(tag := stream_tag(event.subject)):
            return 0
        removed = await self.store.invalidate_tags(None, [tag])
        lag = (datetime.now(UTC) - event.time).total_seconds()
        self.metrics.invalidated("event", removed, lag_seconds=lag)
        if removed:
            details = {"removed": removed, "tags": [tag], "event_id": event.id}
            details |= {"event_type": event.type, "event_source": event.source}
            await self.audit.record("invalidate", actor=SERVICE, resource=tag, data=details)
        return removed


@dataclass(frozen=True, slots=True)
class LockService:
    """Fenced locks: acquire, renew, release, and checking a fence."""

    locks: LockStore
    audit: AuditTrail
    metrics: CacheMetrics

    async def acquire(self, resource: str, ttl_ms: int, wait_ms: int, *, actor: str) -> Lock:
        """The lock, or `Conflict` with `retry_after_ms`; a lock taken over from a holder whose
        lease ran out is audited as a `lock_steal`."""
        check_resource(resource)
        try:
            lock = await self.locks.acquire(resource, ttl_ms, wait_ms)
        except Conflict:
            self.metrics.lock_contended()
            raise
        self.metrics.lock_acquired(took_over=lock.took_over)
        if lock.took_over:
            await self.audit.record(
                "lock_steal", actor=actor, resource=resource, data={"fence": lock.fence}
            )
        return lock

    async def renew(self, resource: str, token: str, ttl_ms: int) -> Lock:
        check_resource(resource)
        try:
            return await self.locks.renew(resource, token, ttl_ms)
        except Conflict:
            self.metrics.lock_lost("renew_refused")
            raise

    async def release(self, resource: str, token: str) -> None:
        check_resource(resource)
        try:
            await self.locks.release(resource, token)
        except Conflict:
            self.metrics.lock_lost("release_refused")
            raise

    async def validate_fence(self, resource: str, fence: int) -> None:
        check_resource(resource)
        await self.locks.validate_fence(resource, fence)
