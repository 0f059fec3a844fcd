"""The async SQLAlchemy engine: psycopg 3 for PostgreSQL, aiosqlite for the embedded file.

PostgreSQL schemas (one per service) become attached database files on SQLite, so the same
`schema="event_store"` tables work on both and each service's data stays in its own file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from outrigger import datadir
from outrigger.telemetry.metrics import trace_exemplar

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import URL, Connection, ExecutionContext

# Half-open connections (a dead server, a cut network) are noticed within about 30 s.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

QUERY_DURATION = Histogram(
    "outrigger_db_query_duration_seconds",
    "Time spent in one database statement, by query name (or the statement's verb).",
    ["query"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


SQLITE_BEGIN = "sqlite_begin"
IMMEDIATE = "BEGIN IMMEDIATE"


def build_engine(
    url: str,
    *,
    schemas: Sequence[str] = (),
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 5.0,
) -> AsyncEngine:
    """Creates (without connecting) the engine for `url`, timed per statement.

    Give it `session_url(settings)` for a service's connections, so they get its timeouts.

    Name a statement for the metric with `.execution_options(query="append")`; unnamed ones are
    labelled by their first keyword (`select`, `insert`…), keeping the label set small.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(sa_url, schemas)
    else:
        engine = create_async_engine(
            sa_url,
            connect_args=dict(KEEPALIVES),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
    _time_statements(engine)
    return engine


def _sqlite_engine(url: URL, schemas: Sequence[str]) -> AsyncEngine:
    database = url.database or ""
    engine = create_async_engine(url, connect_args={"timeout": 30})

    def attached(schema: str) -> Path:
        return Path(database).with_name(f"{Path(database).stem}.{schema}.db")

    @event.listens_for(engine.sync_engine, "do_connect")
    def _make_files(*_: Any) -> None:
        # SQLite gives its -wal and -shm files the mode of their database file
        if database and database != ":memory:":
            for path in (Path(database), *map(attached, schemas)):
                datadir.private_file(path)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, begins transactions (see `_begin`)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        for schema in schemas:
            if database and database != ":memory:":
                cursor.execute(f"ATTACH DATABASE '{attached(schema)}' AS \"{schema}\"")
            else:
                cursor.execute(f"ATTACH DATABASE ':memory:' AS \"{schema}\"")
        for prefix in ["", *(f'"{schema}".' for schema in schemas)]:
            cursor.execute(f"PRAGMA {prefix}journal_mode=WAL")
            cursor.execute(f"PRAGMA {prefix}synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        # The driver would begin lazily at the first write, after the reads that decided it.
        # Say `execution_options(sqlite_begin="BEGIN")` for a read-only snapshot.
        connection.exec_driver_sql(connection.get_execution_options().get(SQLITE_BEGIN, IMMEDIATE))

    return engine


def _time_statements(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(
        conn: Connection,
        _cursor: Any,
        _stmt: str,
        _params: Any,
        context: ExecutionContext,
        _many: bool,
    ) -> None:
        context._outrigger_started = time.perf_counter()  # type: ignore[attr-defined]

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(
        conn: Connection,
        _cursor: Any,
        statement: str,
        _params: Any,
        context: ExecutionContext,
        _many: bool,
    ) -> None:
        started = getattr(context, "_outrigger_started", None)
        if started is None:
            return
        name = context.execution_options.get("query") or verb(statement)
        QUERY_DURATION.labels(name).observe(time.perf_counter() - started, trace_exemplar())


def verb(statement: str) -> str:
    """The metric label of an unnamed statement: its first keyword, or `other`."""
    word = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else "other"
    return word if word in {"select", "insert", "update", "delete", "with", "call"} else "other"
