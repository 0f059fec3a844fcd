"""Redis through redis-py: one connection (a pool, its scripts) per backend, and every Redis
failure as a `CacheError`.

The pool blocks (up to the timeout) when all its connections are busy instead of failing, and a
command is retried once on a fresh connection when its connection broke (a Redis restart leaves
every pooled connection dead), never on a timeout, since a script that timed out may have run.
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

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from redis.commands.core import AsyncScript


def describe(url: str) -> str:
    """Where the server is, without credentials: `127.0.0.1:6379/15`, or the socket path."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"


def blocking_pool(url: str, *, pool_size: int, timeout_seconds: float) -> BlockingConnectionPool:
    """The pool for `url` (hiredis parses the replies when it is installed)."""
    return BlockingConnectionPool.from_url(
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


@contextlib.contextmanager
def cache_errors(where: str, timeout_seconds: float, what: str) -> Iterator[None]:
    """Turns any Redis failure raised inside into a `CacheError` (503) that names the server
    and says what to do; `what` names what is unavailable ("the cache")."""
    try:
        yield
    except RedisTimeoutError as exc:
        raise CacheError(
            f"Redis at {where} did not answer within {timeout_seconds:g} s; "
            f"{what} is unavailable, retry shortly"
        ) from exc
    except RedisConnectionError as exc:
        raise CacheError(
            f"Redis at {where} is unreachable ({exc}); {what} is unavailable until it is back, "
            "retry shortly"
        ) from exc
    except RedisError as exc:
        raise CacheError(f"Redis at {where} refused the command: {exc}") from exc


class RedisConnection:
    """One pool to one Redis, the Lua scripts registered on it (each after `prelude`, the
    helpers they share), and its failures as `CacheError`s that say `what` is unavailable.

    Scripts are called by EVALSHA; after a restart Redis has forgotten them and redis-py loads
    them again.
    """

    def __init__(
        self, url: str, *, pool_size: int, timeout_seconds: float, what: str, prelude: str = ""
    ) -> None:
        self.where = describe(url)
        self.timeout_seconds = timeout_seconds
        self.what = what
        self.prelude = prelude
        pool = blocking_pool(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
        self.client = Redis.from_pool(pool)
        self._closed = False

    def script(self, body: str) -> AsyncScript:
        """Registers `prelude` + `body` once; call it with `run`."""
        return self.client.register_script(self.prelude + body)

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Runs a script on a pooled connection of its own."""
        with self.errors():
            return await script(keys=list(keys), args=list(args))

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """Turns any Redis failure raised inside into a `CacheError` that says what to do."""
        return cache_errors(self.where, self.timeout_seconds, self.what)

    async def close(self) -> None:
        """Closes the pool. Idempotent."""
        if not self._closed:
            self._closed = True
            await self.client.aclose()
