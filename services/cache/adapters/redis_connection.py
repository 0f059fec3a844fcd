"""One connection pool to one Redis, its scripts, and every Redis failure as a `CacheError`.

The pool blocks (up to the timeout) when all its connections are busy instead of failing, and a
command is retried once on a fresh connection when its connection broke (a Redis restart leaves
every pooled connection dead), never on a timeout, since a script that timed out may have run.
Scripts are registered once and called by EVALSHA; after a restart Redis has forgotten them, and
the first call loads them again (redis-py does this on NOSCRIPT).

Single-key operations (`call`: reads, writes, fills, the hot paths) go over one pipelined
connection (`redis_pipeline`) instead of the pool, with the same errors and the same one retry.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from outrigger.errors import CacheError
from services.cache.adapters.redis_lua import PRELUDE
from services.cache.adapters.redis_pipeline import PipelinedConnection, ReplyError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from redis.commands.core import AsyncScript


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
        self.reader = PipelinedConnection(url, self.where, timeout_seconds=timeout_seconds)
        self._closed = False

    def script(self, body: str) -> AsyncScript:
        """Registers `PRELUDE` + `body` once; call it through `run`."""
        return self.client.register_script(PRELUDE + body)

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        with self.errors():
            return await script(keys=list(keys), args=list(args))

    async def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Runs a script over the pipelined connection (see `redis_pipeline`), loading it first
        if Redis forgot it (after a restart). For single-key operations, the hot paths."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.reader.call(*command)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise CacheError(f"Redis at {self.where} refused the command: {exc}") from exc
        body = script.script
        await self.reader.call("SCRIPT", "LOAD", body if isinstance(body, str) else bytes(body))
        try:
            return await self.reader.call(*command)
        except ReplyError as exc:
            raise CacheError(f"Redis at {self.where} refused the command: {exc}") from exc

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
            await self.reader.close()
            await self.client.aclose()
