"""A service's request pool on PostgreSQL (psycopg_pool), and the probe that watches the server.

The pool opens without waiting for its first connection, so a service starts while its database
is down, serves `/healthz`, and is ready once the database answers. Readiness runs on the
probe's own connection: a busy pool never makes a healthy service unready. When a request finds
the server gone (a broken connection, a pool that hands out nothing), the probe polls it: while
it is down, a request that would wait for a connection fails at once with "database
unavailable" (503) instead of after the pool's timeout; once it is back, the pool replaces its
broken connections at once instead of waiting out its reconnection backoff. Until then each
connection is checked before a request gets it, so one dropped connection costs one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from outrigger.db.postgres import (
    configure,
    connect,
    connect_options,
    conninfo,
    session_url,
    translated,
    where,
)
from outrigger.errors import ConnectionPoolError, DatabaseError
from outrigger.resilience import Retry
from outrigger.tasks import stop_task

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from outrigger.settings import Settings

# A pool slot stops retrying its connection after this long (attempts at 0, 1 and 3 s), so
# that it is opened afresh, at once, when the probe finds the server back, rather than after a
# backoff that grew through the outage; meanwhile nothing else knocks on the server but the probe.
RECONNECT_SECONDS = 3.0
SUSPICIOUS_WAIT_SECONDS = 0.1
PROBING = Retry(attempts=sys.maxsize, base_delay=0.1, max_delay=1.0, jitter="none")
PROBE = "SELECT 1"
log = logging.getLogger("outrigger.db")


def _cancelled() -> bool:
    """True if this task was asked to stop (on Python 3.11, `asyncio.wait_for` inside
    psycopg_pool swallows a cancellation that lands as it hands over a connection)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Probe:
    """One dedicated connection that answers `check()`, made again whenever it broke. Its
    statement is timed as `readiness_probe`, apart from the service's own."""

    def __init__(self, url: str, application_name: str) -> None:
        self._url = url
        self._application_name = application_name
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> None:
        """One round trip, or `DatabaseError` saying why not."""
        async with self._lock:
            try:
                with translated():
                    if self._connection is None or self._connection.closed:
                        self._connection = await connect(
                            self._url, self._application_name, names={PROBE: "readiness_probe"}
                        )
                    await self._connection.execute(PROBE)
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


class Pool:
    """Autocommit connections for requests. `open()` in the lifespan, `close()` at its end."""

    def __init__(
        self,
        url: str,
        *,
        application_name: str,
        min_size: int = 1,
        max_size: int = 20,
        wait_seconds: float = 5.0,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """`wait_seconds` bounds the wait for a free connection (then `ConnectionPoolError`);
        `names` labels statements for the query-duration metric (statement text → name)."""
        self.where = where(url)
        self.wait_seconds = wait_seconds
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo(url),
            min_size=min_size,
            max_size=max_size,
            timeout=wait_seconds,
            kwargs=connect_options(application_name, names or {}),
            configure=configure,
            check=self._verify,
            open=False,
            name=application_name,
            reconnect_timeout=RECONNECT_SECONDS,
        )
        self._probe = Probe(url, f"{application_name}-probe")
        self._down: str | None = None
        self._suspicious = False
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, application_name: str, names: Mapping[str, str] | None = None
    ) -> Pool:
        return cls(
            session_url(settings),
            application_name=application_name,
            max_size=settings.database_pool_size + settings.database_max_overflow,
            wait_seconds=settings.database_pool_timeout_seconds,
            names=names,
        )

    async def open(self) -> None:
        """Starts connecting in the background; never fails for an unreachable server."""
        await self._pool.open(wait=False)
        self._suspect()

    async def close(self) -> None:
        task, self._watch = self._watch, None
        await stop_task(task)
        await self._probe.close()
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the pool for the block; driver failures become `DatabaseError`.

        Raises `DatabaseError` at once while the server is known to be down and no connection
        is idle, `ConnectionPoolError` when none was free within `wait_seconds`. A block that
        is cancelled (its client went away) cancels its statement on the server, and the
        connection goes back to the pool clean (psycopg does both).
        """
        with translated():
            connection = await self._checkout()
            if _cancelled():  # Python 3.11's wait_for in the pool swallowed it: honour it now
                await self._pool.putconn(connection)
                raise asyncio.CancelledError
            try:
                async with connection:
                    yield connection
            except psycopg.OperationalError:
                if connection.broken:
                    self._suspect()
                raise
            finally:
                await self._pool.putconn(connection)

    async def _checkout(self) -> psycopg.AsyncConnection[Any]:
        """Waits for a connection, in short slices while the server may be gone, so that a
        request gives up as soon as the probe finds it down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            if self._down is not None and not self._pool.get_stats().get("pool_available"):
                raise DatabaseError(f"database unavailable: {self._down}")
            remaining = deadline - loop.time()
            wait = min(remaining, SUSPICIOUS_WAIT_SECONDS) if self._suspicious else remaining
            try:
                return await self._pool.getconn(timeout=max(wait, 0.001))
            except PoolTimeout as exc:
                if self._down is None and loop.time() >= deadline:
                    self._suspect()
                    raise ConnectionPoolError(
                        f"no database connection free within {self.wait_seconds:g} s"
                    ) from exc

    async def check(self) -> None:
        """Readiness: a round trip on the probe's connection, never one of the pool's."""
        try:
            await self._probe.check()
        except DatabaseError as exc:
            self._gone(exc)
            self._suspect()
            raise
        if self._down is not None:
            self._back()
            self._suspect()

    def _gone(self, failure: DatabaseError) -> None:
        if self._down is None:
            log.warning(
                "PostgreSQL at %s is unavailable (%s); requests fail at once until it is back",
                self.where,
                failure.detail,
            )
        self._down = failure.detail.removeprefix("database unavailable: ")

    def _back(self) -> None:
        if self._down is not None:
            self._down = None
            log.info("PostgreSQL at %s is back", self.where)

    async def _verify(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Checks a connection before a request gets it, while some may be broken."""
        if self._suspicious:
            await AsyncConnectionPool.check_connection(connection)

    def _suspect(self) -> None:
        """A connection broke: until the probe has found the server and the pool's idle
        connections are checked, each one is checked before use."""
        self._suspicious = True
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watching(), name=f"probe {self.where}")

    async def _watching(self) -> None:
        try:
            await PROBING.call(self._probe_once, name="database-probe")
        except Exception:
            log.exception("the probe of PostgreSQL at %s failed; the next failure restarts it")

    async def _probe_once(self) -> None:
        try:
            await self._probe.check()
        except DatabaseError as exc:
            self._gone(exc)
            raise
        self._back()
        await self._pool.check()  # replaces the broken ones at once, not after their backoff
        self._suspicious = False
