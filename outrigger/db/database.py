"""`Database`: one engine, its unit of work, its readiness check and its errors."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from outrigger.db.engine import build_engine
from outrigger.db.pool import Probe
from outrigger.db.postgres import session_url
from outrigger.errors import ConnectionPoolError, DatabaseError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from outrigger.settings import Settings


class Database:
    """Owns the engine of one service. Built in the lifespan, closed there with `dispose()`."""

    def __init__(self, engine: AsyncEngine, *, application_name: str = "outrigger") -> None:
        self.engine = engine
        url = engine.url
        self._probe = (
            Probe(url.render_as_string(hide_password=False), f"{application_name}-probe")
            if url.get_backend_name() == "postgresql"
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, schemas: Sequence[str] = ()) -> Database:
        """The service's engine, its connections with the session timeouts of `settings`."""
        return cls(
            build_engine(
                session_url(settings),
                schemas=schemas,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                pool_timeout=settings.database_pool_timeout_seconds,
            )
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: commits when the block ends, rolls back if it raises.

        Driver failures surface as `DatabaseError` (`ConnectionPoolError` when no connection
        was free in time); the caller's own exceptions pass through unchanged.
        """
        with translate_errors():
            async with self.engine.begin() as connection:
                yield connection

    async def check(self) -> None:
        """Readiness: one round trip, or `DatabaseError` saying why not. On PostgreSQL it runs
        on a connection of its own, so a pool busy with requests does not fail it."""
        if self._probe is not None:
            await self._probe.check()
            return
        with translate_errors():
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._probe is not None:
            await self._probe.close()
        await self.engine.dispose()


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Maps driver and pool failures to the kit's errors, with the driver's reason."""
    try:
        yield
    except sa_exc.TimeoutError as exc:
        raise ConnectionPoolError(f"no database connection free in time: {exc}") from exc
    except sa_exc.OperationalError as exc:
        if isinstance(exc.orig, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
            raise DatabaseError(f"database busy: {_reason(exc)}") from exc
        raise DatabaseError(f"database unavailable: {_reason(exc)}") from exc
    except sa_exc.InterfaceError as exc:
        raise DatabaseError(f"database unavailable: {_reason(exc)}") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseError(f"database connection lost: {_reason(exc)}") from exc
        raise
    except OSError as exc:
        raise DatabaseError(f"database unreachable: {exc}") from exc


def _reason(exc: sa_exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
