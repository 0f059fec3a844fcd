"""The cache's Redis connection: the kit's (`outrigger.redis`: one pool, the scripts after the
cache's Lua prelude, every Redis failure as a `CacheError`), with its calls batched.

Single-key operations (`call`: reads, writes, fills; the hot paths) are batched: the commands
issued in one turn of the event loop travel together as one redis-py pipeline, one round trip
over one pooled connection, and each caller gets its own reply. Under load that is one pool
checkout and one network write for many requests instead of one each.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from outrigger.redis import RedisConnection
from services.cache.adapters.redis_lua import PRELUDE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.commands.core import AsyncScript

    Queued = tuple[tuple[Any, ...], asyncio.Future[Any]]


class BatchedConnection(RedisConnection):
    """The kit's connection (pool, scripts, errors) with `call`: the loop turn's batch."""

    def __init__(self, url: str, *, pool_size: int = 50, timeout_seconds: float = 2.0) -> None:
        super().__init__(
            url,
            pool_size=pool_size,
            timeout_seconds=timeout_seconds,
            what="the cache",
            prelude=PRELUDE,
        )
        self._queued: list[Queued] = []
        self._batches: set[asyncio.Task[None]] = set()

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

    async def close(self) -> None:
        await asyncio.gather(*self._batches, return_exceptions=True)
        await super().close()
