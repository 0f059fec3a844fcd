"""PostgreSQL through psycopg 3: session timeouts, dedicated connections, timed statements and
the kit's errors for driver failures.

Every connection a service opens (its request pool, its dedicated connections, its SQLAlchemy
engine) carries the same session settings from `session_url(settings)`: `statement_timeout`,
`lock_timeout`, `idle_in_transaction_session_timeout` and `connect_timeout`. A statement that
runs into one of them fails with a 503 problem instead of holding its connection for minutes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import orjson
import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import set_json_loads
from psycopg_pool import PoolTimeout
from sqlalchemy.engine import make_url

from outrigger.db.engine import KEEPALIVES, QUERY_DURATION, verb
from outrigger.errors import ConnectionPoolError, DatabaseError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from psycopg.abc import Params, Query

    from outrigger.settings import Settings


@dataclass(frozen=True)
class Timeouts:
    """Session limits, in seconds (0 turns one off). The defaults suit an HTTP service."""

    statement: float = 30.0
    lock: float = 5.0
    idle_in_transaction: float = 60.0
    connect: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Timeouts:
        return cls(
            statement=settings.database_statement_timeout_seconds,
            lock=settings.database_lock_timeout_seconds,
            idle_in_transaction=settings.database_idle_in_transaction_timeout_seconds,
            connect=settings.database_connect_timeout_seconds,
        )

    @property
    def options(self) -> str:
        """The libpq `options` that set them for a session."""
        limits = {
            "statement_timeout": self.statement,
            "lock_timeout": self.lock,
            "idle_in_transaction_session_timeout": self.idle_in_transaction,
        }
        return " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in limits.items())

    def add_to(self, url: str) -> str:
        """`url` with these limits in its query; options the URL sets itself come after (and
        so win), as does a `connect_timeout` of its own."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query["options"] = f"{self.options} {query.get('options', '')}".strip()
        if self.connect:
            # libpq counts whole seconds and treats less than 2 as 2
            query.setdefault("connect_timeout", str(max(2, round(self.connect))))
        return parts._replace(query=urlencode(query, quote_via=quote)).geturl()


def session_url(settings: Settings) -> str:
    """The database URL every connection of a service uses: on PostgreSQL, with the session
    timeouts of `settings`; the SQLite URL unchanged."""
    url = settings.database_url
    return Timeouts.from_settings(settings).add_to(url) if url.startswith("postgres") else url


def conninfo(url: str) -> str:
    """A libpq connection string from an SQLAlchemy URL (`postgresql+psycopg://…?options=…`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"expected a postgresql:// URL, not {parsed.drivername!r}")
    parts = parsed.translate_connect_args(username="user", database="dbname")
    query = {name: value for name, value in parsed.query.items() if isinstance(value, str)}
    return make_conninfo("", **{name: str(value) for name, value in parts.items()}, **query)


def where(url: str) -> str:
    """`host:port/db` of a URL, without credentials or options."""
    return url.rpartition("@")[2].partition("?")[0] if "@" in url else url.partition("://")[2]


def timed_cursor(names: Mapping[str, str]) -> type[psycopg.AsyncCursor[Any]]:
    """A cursor class that times each statement into `outrigger_db_query_duration_seconds`,
    labelled by its name in `names` (statement text → name) or else by its verb, as the
    SQLAlchemy engine does."""

    class TimedCursor(psycopg.AsyncCursor[Any]):
        async def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            prepare: bool | None = None,
            binary: bool | None = None,
        ) -> Self:
            started = time.perf_counter()
            try:
                return await super().execute(query, params, prepare=prepare, binary=binary)  # type: ignore[arg-type,misc]
            finally:
                name = names.get(query) if isinstance(query, str) else None
                label = name or (verb(query) if isinstance(query, str) else "other")
                QUERY_DURATION.labels(label).observe(time.perf_counter() - started)

    return TimedCursor


async def configure(connection: psycopg.AsyncConnection[Any]) -> None:
    """What every connection gets once: JSON parsed by orjson, UTC timestamps."""
    set_json_loads(orjson.loads, connection)
    await connection.execute("SET TIME ZONE 'UTC'")


def connect_options(application_name: str, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "autocommit": True,
        "application_name": application_name,
        "cursor_factory": timed_cursor(names),
        **KEEPALIVES,
    }


async def connect(
    url: str, application_name: str, *, names: Mapping[str, str] | None = None
) -> psycopg.AsyncConnection[Any]:
    """A dedicated autocommit connection (leadership locks, LISTEN, readiness); a failure is
    the driver's error, for loops that reconnect by themselves."""
    connection = await psycopg.AsyncConnection.connect(
        conninfo(url), **connect_options(application_name, names or {})
    )
    try:
        await configure(connection)
    except BaseException:  # cancelled by a quick shutdown, too: never leave it open
        await connection.close()
        raise
    return connection


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Driver failures as the kit's errors, with the driver's reason: a pool with nothing free
    in time is `ConnectionPoolError`, a statement stopped by a session timeout and a lost or
    refused connection are `DatabaseError` (503). Other errors pass through unchanged."""
    try:
        yield
    except PoolTimeout as exc:
        raise ConnectionPoolError(f"no database connection free in time: {exc}") from exc
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
        raise DatabaseError(f"database busy: {reason(exc)}") from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise DatabaseError(f"database unavailable: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """The first line of a driver error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
