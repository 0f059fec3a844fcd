"""One connection pool to one Redis, its scripts, and every Redis failure as a `CacheError`.

All through redis-py's public API, with hiredis parsing replies. The pool blocks (up to the
timeout) when all its connections are busy instead of failing, and a command is retried once on
a fresh connection when its connection broke (a Redis restart leaves every pooled connection
dead), never on a timeout, since a script that timed out may have run. Scripts are registered
once and called by EVALSHA; after a restart Redis has forgotten them, and they are loaded again.

Single-key operations (`call`: reads, writes, fills; the hot paths) are batched: the commands
issued in one turn of the event loop travel together as one redis-py pipeline, one round trip
over one pooled connection, and each caller gets its own reply. Under load that is one pool
checkout and one network write for many requests instead of one each.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from outrigger.errors import CacheError
from services.cache.adapters.redis_lua import PRELUDE

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from redis.commands.core import AsyncScript

    Queued = tuple[tuple[Any, ...], asyncio.Future[Any]]


def describe(url: str) -> str:
    """Where the server is, without credentials: `127.0.0.1:6379/15`, or the socket path."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"


class RedisConnection:
    def __init__(self, url: str, *, pool_size: int = 50, timeout_seconds: float = 2.0) -> None:
        self.where = describe(url)
        self.timeout_seconds = timeout_seconds
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(
                ExponentialWithJitterBackoff(base=0.01, cap=0.1),
                retries=1,
                supported_errors=(RedisConnectionError,),
            ),
        )
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

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turns any Redis failure raised inside into a `CacheError` that says what to do."""
        try:
            yield
        except RedisTimeoutError as exc:
            raise CacheError(
                f"Redis at {self.where} did not answer within {self.timeout_seconds:g} s; "
                "the cache is unavailable, retry shortly"
            ) from exc
        except RedisConnectionError as exc:
            raise CacheError(
                f"Redis at {self.where} is unreachable ({exc}); the cache is unavailable until "
                "it is back, retry shortly"
            ) from exc
        except RedisError as exc:
            raise CacheError(f"Redis at {self.where} refused the command: {exc}") from exc

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.gather(*self._batches, return_exceptions=True)
            await self.client.aclose()
