"""Connections of the PostgreSQL adapter: the kit's pool for requests, dedicated connections
for the sequencer, the relay's leadership and the log listener.

The pool's connections are in autocommit mode, so an append (one call of the `append` stored
function) is one round trip with no BEGIN/COMMIT of its own. Give every one of them the URL
from `outrigger.db.session_url(settings)`, which carries the session timeouts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from outrigger import db
from outrigger.db import conninfo
from services.event_store.adapters import postgres_sql as sql

if TYPE_CHECKING:
    import psycopg

    from outrigger.settings import Settings

__all__ = ["connect", "conninfo", "open_pool", "pool_sizes"]

APPLICATION_NAME = "outrigger-event-store"
QUERY_NAMES = {
    sql.APPEND: "event_store_append",
    sql.REPLAYED: "event_store_replayed",
    sql.SEQUENCE_BATCH: "event_store_sequence_batch",
}


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 20, wait_seconds: float = 5.0
) -> db.Pool:
    """Opens the request pool without waiting for the server (see `outrigger.db.Pool`):
    `wait_seconds` bounds the wait for a free connection."""
    pool = db.Pool(
        url,
        application_name=APPLICATION_NAME,
        min_size=min_size,
        max_size=max_size,
        wait_seconds=wait_seconds,
        names=QUERY_NAMES,
    )
    await pool.open()
    return pool


def pool_sizes(settings: Settings) -> dict[str, Any]:
    return {
        "min_size": 1,
        "max_size": settings.database_pool_size + settings.database_max_overflow,
        "wait_seconds": settings.database_pool_timeout_seconds,
    }


async def connect(url: str, application_name: str) -> psycopg.AsyncConnection[Any]:
    """A dedicated autocommit connection (sequencer leadership, LISTEN)."""
    return await db.connect(url, application_name, names=QUERY_NAMES)
