"""The Redis cache store: every entry, lease and lock operation is one EVALSHA of a script in
`redis_lua`, so one round trip and one atomic step (batches included).

Reads run a script too, so an entry and its remaining TTL come from one snapshot. The exceptions:
`invalidate_prefix` walks the keyspace with SCAN, `invalidate_tags(None, …)` runs the script once
per namespace. Single-key operations (get, put, delete, fill leases) are pipelined together per
event-loop turn, batches and scans run on a pooled connection each (`redis_connection`); the
store's `RedisLocks` share the same pool. Every Redis failure is a `CacheError` (503) naming the
server.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.cache.adapters import redis_lua as lua
from services.cache.adapters.redis_connection import BatchedConnection
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

GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")
SCAN_COUNT = 1000


def _entry(key: str, row: list[Any]) -> Entry:
    value, content_type, version, tags, created, swr, pttl = row
    fresh_ms = int(pttl) - int(swr)
    return Entry(
        key=key,
        value=bytes(value),
        content_type=content_type.decode(),
        version=version.decode(),
        tags=frozenset(tags.decode().split("\n")) - {""},
        created=datetime.fromtimestamp(int(created) / 1000, UTC),
        ttl_ms=max(fresh_ms, 0),
        swr_ms=int(swr),
        stale=fresh_ms <= 0,
    )


def _stored(write: Write, version: str, created_ms: bytes) -> Entry:
    assert write.ttl_ms is not None
    return Entry(
        key=write.key,
        value=write.value,
        content_type=write.content_type,
        version=version,
        tags=frozenset(write.tags),
        created=datetime.fromtimestamp(int(created_ms) / 1000, UTC),
        ttl_ms=write.ttl_ms,
        swr_ms=write.swr_ms,
    )


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode()


def _fields(write: Write, version: str) -> list[Any]:
    tags = "\n".join(sorted(write.tags))
    return [write.key, write.value, write.content_type, version, tags, write.ttl_ms, write.swr_ms]


class RedisCacheStore:
    """Entries on the Redis at `url`. `redis` is its connection: `RedisLocks` share it, and
    `close()` closes it."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "oc",
        pool_size: int = 50,
        timeout_seconds: float = 2.0,
    ) -> None:
        self.redis = BatchedConnection(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
        self._prefix = key_prefix
        self._registry = f"{key_prefix}:namespaces"
        self._read, self._put = self.redis.script(lua.READ), self.redis.script(lua.PUT)
        self._mset, self._delete = self.redis.script(lua.MSET), self.redis.script(lua.DELETE)
        self._drop_keys = self.redis.script(lua.DROP_KEYS)
        self._invalidate = self.redis.script(lua.INVALIDATE_TAGS)
        self._lease, self._fill = self.redis.script(lua.LEASE), self.redis.script(lua.FILL)

    def _space(self, namespace: str) -> str:
        return f"{self._prefix}:{{{namespace}}}:"

    def _keys(self, namespace: str, key: str) -> list[str]:
        """The entry and fill lease keys of `key`, then the namespace registry."""
        space = self._space(namespace)
        return [f"{space}k:{key}", f"{space}l:{key}", self._registry]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.redis.close()

    async def check(self) -> None:
        with self.redis.errors():
            await self.redis.client.ping()

    async def stats(self) -> StoreStats:
        with self.redis.errors():
            info = await self.redis.client.info("stats")
        return StoreStats(int(info["expired_keys"]), int(info["evicted_keys"]))

    async def get(self, namespace: str, key: str, *, allow_stale: bool = False) -> Entry | None:
        [row] = await self.redis.call(self._read, self._keys(namespace, key)[:1])
        entry = None if row == 0 else _entry(key, row)
        return None if entry is None or (entry.stale and not allow_stale) else entry

    async def put(
        self, namespace: str, write: Write, condition: WriteCondition = UNCONDITIONAL
    ) -> Entry:
        kind = "absent" if condition.if_none_match_any else "match" if condition.if_match else ""
        version, space = new_token(), self._space(namespace)
        args = [space, namespace, *_fields(write, version), kind, condition.if_match or ""]
        found = await self.redis.call(self._put, self._keys(namespace, write.key), args)
        if found[0] == b"precondition":
            current = found[1].decode() or None
            raise precondition_failed(namespace, write.key, condition, current)
        return _stored(write, version, found[1])

    async def delete(
        self, namespace: str, key: str, condition: WriteCondition = UNCONDITIONAL
    ) -> bool:
        args = [self._space(namespace), key, condition.if_match or ""]
        found = await self.redis.call(self._delete, self._keys(namespace, key)[:2], args)
        if found[0] == b"precondition":
            raise precondition_failed(namespace, key, condition, found[1].decode() or None)
        return bool(found[1])

    async def mget(self, namespace: str, keys: Sequence[str]) -> list[Entry | None]:
        entry_keys = [self._keys(namespace, key)[0] for key in keys]
        rows = await self.redis.run(self._read, entry_keys, [])
        entries = [
            None if row == 0 else _entry(key, row) for key, row in zip(keys, rows, strict=True)
        ]
        return [None if entry is None or entry.stale else entry for entry in entries]

    async def mset(self, namespace: str, writes: Sequence[Write]) -> list[Entry]:
        versions = [new_token() for _ in writes]
        keys = [self._keys(namespace, write.key)[0] for write in writes] + [self._registry]
        args: list[Any] = [self._space(namespace), namespace]
        for write, version in zip(writes, versions, strict=True):
            args += _fields(write, version)
        created = await self.redis.run(self._mset, keys, args)
        return [
            _stored(write, version, created)
            for write, version in zip(writes, versions, strict=True)
        ]

    async def invalidate_tags(self, namespace: str | None, tags: Iterable[str]) -> int:
        tags = list(tags)
        if namespace is not None:
            namespaces = [namespace]
        else:
            with self.redis.errors():
                known = await self.redis.client.smembers(self._registry)
            namespaces = sorted(_text(raw) for raw in known)
        removed = 0
        for ns in namespaces:
            space = self._space(ns)
            indexes = [f"{space}t:{tag}" for tag in tags]
            args = [space, MAX_LEASE_MS, *tags]
            removed += int(await self.redis.run(self._invalidate, indexes, args))
        return removed

    async def invalidate_prefix(self, namespace: str, prefix: str) -> int:
        space = self._space(namespace)
        escaped = GLOB_SPECIAL.sub(r"\\\1", prefix)
        pattern = f"{space}[kl]:{escaped}*"
        skip = len(f"{space}k:")
        cursor, removed = 0, 0
        while True:
            with self.redis.errors():
                cursor, found = await self.redis.client.scan(cursor, pattern, SCAN_COUNT)
            keys = sorted({_text(raw)[skip:] for raw in found})
            if keys:
                entry_keys = [f"{space}k:{key}" for key in keys]
                removed += int(await self.redis.run(self._drop_keys, entry_keys, [space, *keys]))
            if cursor == 0:
                return removed

    async def acquire_fill_lease(
        self, namespace: str, key: str, *, lease_ms: int, wait_ms: int = 0
    ) -> Lookup:
        keys = self._keys(namespace, key)

        async def attempt() -> Lookup:
            token = new_token()
            found = await self.redis.call(self._lease, keys, [token, lease_ms, namespace])
            entry = None if found[1] == 0 else _entry(key, found[1])
            if found[0] == b"hit":
                return Lookup(entry)
            if found[0] == b"lease":
                return Lookup(entry, FillLease(token, lease_ms))
            return Lookup(entry, retry_after_ms=max(int(found[2]), 1))

        return await wait_for_fill(attempt, wait_ms)

    async def fill(self, namespace: str, write: Write, lease_token: str) -> Entry:
        version = new_token()
        args = [self._space(namespace), namespace, *_fields(write, version), lease_token]
        found = await self.redis.call(self._fill, self._keys(namespace, write.key), args)
        if found[0] == b"nolease":
            raise lease_not_held(namespace, write.key)
        if found[0] == b"invalidated":
            raise lease_outdated(namespace, write.key, found[1].decode())
        return _stored(write, version, found[1])
