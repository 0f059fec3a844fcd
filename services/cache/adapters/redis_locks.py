"""Fenced locks on Redis (`LockStore`): SET NX PX and the fence, compare-and-act renew and
release, in Lua, over the cache store's connection. Keys are in `redis_lua`.

The fence is issued by the acquiring script itself, so no two holders ever get the same fence,
and a fence never goes down: max(last + 1, Redis time in µs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.cache.adapters import redis_lua as lua
from services.cache.adapters.waiting import wait_for_lock
from services.cache.domain import Lock, lock_held, new_token, not_holder, stale_fence

if TYPE_CHECKING:
    from services.cache.adapters.redis_connection import BatchedConnection


class RedisLocks:
    def __init__(self, redis: BatchedConnection, key_prefix: str) -> None:
        self.redis = redis
        self._prefix = key_prefix
        self._acquire = redis.script(lua.ACQUIRE)
        self._renew = redis.script(lua.RENEW)
        self._release = redis.script(lua.RELEASE)

    def _keys(self, resource: str) -> list[str]:
        return [f"{self._prefix}:lock:{{{resource}}}", f"{self._prefix}:fence:{{{resource}}}"]

    async def _try(self, resource: str, ttl_ms: int) -> Lock | int:
        """The lock, or the holder's remaining ms."""
        token = new_token()
        found = await self.redis.run(self._acquire, self._keys(resource), [token, ttl_ms])
        if found[0] == b"held":
            return max(int(found[1]), 1)
        return Lock(resource, token, int(found[1]), ttl_ms, took_over=bool(found[2]))

    async def acquire(self, resource: str, ttl_ms: int, wait_ms: int = 0) -> Lock:
        async def attempt() -> Lock | int:
            return await self._try(resource, ttl_ms)

        result = await wait_for_lock(attempt, wait_ms)
        if isinstance(result, int):
            raise lock_held(resource, result)
        return result

    async def renew(self, resource: str, token: str, ttl_ms: int) -> Lock:
        fence = await self.redis.run(self._renew, self._keys(resource), [token, ttl_ms])
        if fence is None:
            raise not_holder(resource)
        return Lock(resource, token, int(fence), ttl_ms)

    async def release(self, resource: str, token: str) -> None:
        if not await self.redis.run(self._release, self._keys(resource), [token]):
            raise not_holder(resource)

    async def validate_fence(self, resource: str, fence: int) -> None:
        with self.redis.errors():
            latest = await self.redis.client.hget(self._keys(resource)[1], "issued")
        if latest is None or int(latest) != fence:
            raise stale_fence(resource, fence, 0 if latest is None else int(latest))
