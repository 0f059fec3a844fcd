"""One connection pool to one Redis, its scripts, and every Redis failure as a `CacheError`.

All through redis-py's public API, with hiredis parsing replies; the pool and the error mapping
are the kit's (`outrigger.redis`). Scripts are registered once and called by EVALSHA; after a
restart Redis has forgotten them, and they are loaded again.

Single-key operations (`call`: reads, writes, fills; the hot paths) are batched: the commands
issued in one turn of the event loop travel together as one redis-py pipeline, one round trip
over one pooled connection, and each caller gets its own reply. Under load that is one pool
checkout and one network write for many requests instead of one each.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from outrigger.redis import blocking_pool, cache_errors, describe
from services.cache.adapters.redis_lua import PRELUDE

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence

    from redis.commands.core import AsyncScript

    Queued = tuple[tuple[Any, ...], asyncio.Future[Any]]


class RedisConnection:
    def __init__(self, url: str, *, pool_size: int = 50, timeout_seconds: float = 2.0) -> None:
        self.where = describe(url)
        self.timeout_seconds = timeout_seconds
        pool = blocking_pool(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
        self.client = Redis.from_pool(pool)
        self._queued: list[Queued] = []
        self._batches: set[asyncio.Task[None]] = set()
        self._closed = False

    def script(self, body: str) -> AsyncScript:
        """Registers `PRELUDE` + `body` once; call it through `run` or `call`."""
        return self.client.register_script(PRELUDE + body)

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Runs a script on a connection of its own (batches, scans, locks)."""
        with self.errors():
            return await script(keys=list(keys), args=list(args))

    async def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Runs a script in the pipeline of this loop turn's single-key operations (module
        doc); a script Redis forgot is loaded again on its own connection (`run`)."""
        with self.errors():
            try:
                return await self._send("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:
                pass
        return await self.run(script, keys, args)

    def _send(self, *command: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((command, reply))
        return reply

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        batch = asyncio.ensure_future(self._execute(queued))
        self._batches.add(batch)
        batch.add_done_callback(self._batches.discard)

    async def _execute(self, queued: list[Queued]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipeline:
                for command, _ in queued:
                    pipeline.execute_command(*command)
                replies = await pipeline.execute(raise_on_error=False)
        except Exception as exc:
            for _, reply in queued:
                if not reply.done():
                    reply.set_exception(exc)
            return
        for (_, reply), outcome in zip(queued, replies, strict=True):
            if reply.done():
                continue  # its caller went away
            if isinstance(outcome, Exception):
                reply.set_exception(outcome)
            else:
                reply.set_result(outcome)

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """Turns any Redis failure raised inside into a `CacheError` that says what to do."""
        return cache_errors(self.where, self.timeout_seconds, "the cache")

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.gather(*self._batches, return_exceptions=True)
            await self.client.aclose()
