"""Connections of the PostgreSQL adapter: the pool for requests, dedicated ones for the
sequencer and the log listener.

The pool's connections are in autocommit mode, so an append (one call of the `append` stored
function) is one round trip with no BEGIN/COMMIT of its own. JSON columns are parsed by orjson.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from outrigger.errors import DatabaseError

if TYPE_CHECKING:
    from outrigger.settings import Settings

# Half-open connections (a dead server, a cut network) are noticed within about 30 s.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def conninfo(url: str) -> str:
    """A libpq URL from an SQLAlchemy one (`postgresql+psycopg://…` → `postgresql://…`)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"expected a postgresql:// URL, not {scheme or url!r}")
    return f"postgresql://{rest}"


async def _configure(connection: psycopg.AsyncConnection[Any]) -> None:
    set_json_loads(orjson.loads, connection)
    await connection.execute("SET TIME ZONE 'UTC'")


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 20, wait_seconds: float = 5.0
) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """Opens the request pool and waits for its first connection (a failure raises here).

    `wait_seconds` bounds the wait for a free connection, then `PoolTimeout`.
    """
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
        conninfo(url),
        min_size=min_size,
        max_size=max_size,
        timeout=wait_seconds,
        kwargs={"autocommit": True, "application_name": "outrigger-event-store", **KEEPALIVES},
        configure=_configure,
        open=False,
        name="event_store",
    )
    try:
        await pool.open(wait=True, timeout=wait_seconds)
    except PoolTimeout as exc:
        await pool.close()
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {_where(url)} within {wait_seconds:g} s; "
            "check that it runs and that OUTRIGGER_DATABASE_URL is right"
        ) from exc
    return pool


def _where(url: str) -> str:
    return url.rpartition("@")[2] if "@" in url else url.partition("://")[2]


def pool_sizes(settings: Settings) -> dict[str, Any]:
    return {
        "min_size": 1,
        "max_size": settings.database_pool_size + settings.database_max_overflow,
        "wait_seconds": settings.database_pool_timeout_seconds,
    }


async def connect(url: str, application_name: str) -> psycopg.AsyncConnection[Any]:
    """A dedicated autocommit connection (sequencer leadership, LISTEN)."""
    connection = await psycopg.AsyncConnection.connect(
        conninfo(url), autocommit=True, application_name=application_name, **KEEPALIVES
    )
    try:
        await _configure(connection)
    except BaseException:  # cancelled by a quick shutdown, too: never leave it open
        await connection.close()
        raise
    return connection
