"""The cache's ports, one per capability, each implemented by both backends (Redis, in memory):
`CacheStore` for entries (with tags, batches and fill leases) and `LockStore` for fenced locks.

Arguments arrive checked: the use-case room applied the domain rules (`rules`) and resolved the
TTL, so adapters store and fetch without checking again. A backend failure raises `CacheError`
(503), after which the outcome of a write is unknown. Each method is atomic: a concurrent reader
sees all of a write or none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from services.cache.domain.models import UNCONDITIONAL

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from services.cache.domain.models import (
        Entry,
        Lock,
        Lookup,
        StoreStats,
        Write,
        WriteCondition,
    )


class CacheStore(Protocol):
    """Namespaced entries with TTLs, versions, tags and fill leases.

    What the use-case room counts comes back in the results: hits and misses (an `Entry` or
    None), stale serves (`Entry.stale`), leases granted (`Lookup.lease`); `stats()` gives what only
    the backend sees. The store owns the backend's connections (its `LockStore` shares them).
    """

    async def start(self) -> None:
        """Prepares the adapter (background sweeps); connections open lazily. Idempotent."""
        ...

    async def close(self) -> None:
        """Stops background work and closes every connection. Idempotent."""
        ...

    async def check(self) -> None:
        """Returns when the backend answers now; raises `CacheError` saying why not."""
        ...

    async def stats(self) -> StoreStats:
        """Expired and evicted key counts as the backend reports them."""
        ...

    async def get(self, namespace: str, key: str, *, allow_stale: bool = False) -> Entry | None:
        """The fresh entry, or None. With `allow_stale`, an entry past its TTL but inside its
        stale window comes back too, with `stale=True` and `ttl_ms=0`."""
        ...

    async def put(
        self, namespace: str, write: Write, condition: WriteCondition = UNCONDITIONAL
    ) -> Entry:
        """Stores the write (its TTL resolved) under a new version; returns the entry as stored.

        Replaces the value, content type, tags, TTL and stale window. `condition` is checked
        against the fresh entry in the same atomic step (it is never `contradictory`); when it
        fails nothing changes and `PreconditionFailed` (412) carries `current_version`. A put
        voids any fill lease on the key (its filler then gets `Conflict`).
        """
        ...

    async def delete(
        self, namespace: str, key: str, condition: WriteCondition = UNCONDITIONAL
    ) -> bool:
        """Removes the entry (fresh or stale) and voids its fill lease; True if there was one.

        `if_match` makes it conditional (`PreconditionFailed` on another version or a miss);
        a delete never carries `if_none_match_any`.
        """
        ...

    async def mget(self, namespace: str, keys: Sequence[str]) -> list[Entry | None]:
        """The fresh entries of 1-1,000 distinct keys, in the order asked, None for each miss.

        One backend round trip, one consistent snapshot.
        """
        ...

    async def mset(self, namespace: str, writes: Sequence[Write]) -> list[Entry]:
        """Stores 1-1,000 writes (TTLs resolved) to distinct keys, all or nothing, in one round
        trip. Unconditional, and like `put` for each write."""
        ...

    async def invalidate_tags(self, namespace: str | None, tags: Iterable[str]) -> int:
        """Removes every entry carrying any of `tags`; returns how many were removed.

        Atomic per namespace: no reader sees some of a tag's entries gone and others still there.
        Fill leases granted before the invalidation can no longer fill with these tags (their
        data may predate it). `namespace` None means every namespace that ever held a tagged
        entry or a lease, each one atomically.
        """
        ...

    async def invalidate_prefix(self, namespace: str, prefix: str) -> int:
        """Removes every entry whose key starts with `prefix` ("" = the whole namespace) and
        voids their fill leases; returns how many were removed.

        Not atomic: the keyspace is walked in batches, so a key written under the prefix during
        the walk may survive. Costs time in proportion to the backend's whole keyspace.
        """
        ...

    async def acquire_fill_lease(
        self, namespace: str, key: str, *, lease_ms: int, wait_ms: int = 0
    ) -> Lookup:
        """A read that protects the backend behind the cache from a stampede on a miss.

        Fresh hit: the entry. Otherwise the first caller gets a `FillLease` valid `lease_ms`
        (1-60,000), plus the stale copy if one is inside its window (serve it, refill behind it).
        Later callers get no lease: the stale copy at once if there is one, else they wait up to
        `wait_ms` (0-60,000) for the fill, and get the filled entry, or the lease itself if the
        filler's lease ran out, or, at the deadline, `Lookup(None, retry_after_ms=…)`.
        """
        ...

    async def fill(self, namespace: str, write: Write, lease_token: str) -> Entry:
        """Stores `write` like an unconditional `put` and ends the fill lease.

        `Conflict` (nothing stored) unless `lease_token` holds the key's lease now: the lease
        ran out, a put, delete or invalidation of the key voided it, or one of the write's tags
        was invalidated after the lease was granted.
        """
        ...


class LockStore(Protocol):
    """Fenced locks: one holder per resource at a time, with a fence that only grows.

    What the use-case room counts comes back in the results: contention (`Conflict` from
    `acquire`), losses (`Conflict` from `renew` or `release`, `Lock.took_over`).
    """

    async def acquire(self, resource: str, ttl_ms: int, wait_ms: int = 0) -> Lock:
        """Takes the lock for `ttl_ms` (1-3,600,000) with a new token and a higher fence.

        While another holder has it, retries for up to `wait_ms` (0-60,000), then raises
        `Conflict` with `retry_after_ms` (the holder's remaining lease). The fence is issued in
        the same atomic step as the acquire, so two holders never share one.
        """
        ...

    async def renew(self, resource: str, token: str, ttl_ms: int) -> Lock:
        """Extends the holder's lease to `ttl_ms` from now, keeping its fence.

        `Conflict` unless `token` holds the lock now (compare-and-act in one atomic step): the
        lease was lost, and the holder must stop the work the lock guards.
        """
        ...

    async def release(self, resource: str, token: str) -> None:
        """Frees the lock if `token` holds it; `Conflict` otherwise (the lease was already lost)."""
        ...

    async def validate_fence(self, resource: str, fence: int) -> None:
        """Returns if no later fence was issued for `resource`; `Conflict` if one was.

        A downstream resource guarded by the lock calls it inside its own per-resource write
        serialization, or better, applies the rule itself in the same atomic step as the
        write: keep the highest fence accepted and refuse any write that carries a lower one.
        """
        ...
