"""SQLite adapters' transactions (one writer at a time, readers on WAL snapshots) and times.

Write transactions begin with `BEGIN IMMEDIATE` (the kit's default on SQLite), which takes
SQLite's write lock up front, so an append's reads and writes see no other writer in any process;
an in-process lock queues this process's writers instead of letting them spin on the busy
timeout. Reads run in a plain `BEGIN`: one consistent WAL snapshot for all their statements.

Times are stored as integer microseconds since the Unix epoch (UTC): they sort and compare in
SQL, and keep every digit a `datetime` has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from outrigger.db.database import translate_errors
from outrigger.db.engine import SQLITE_BEGIN

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncConnection

    from outrigger.db.database import Database

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    """Now, in microseconds since the epoch."""
    return time.time_ns() // 1000


def microseconds(moment: datetime) -> int:
    """An aware `datetime` as microseconds since the epoch."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def timestamp(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC `datetime`."""
    return EPOCH + timedelta(microseconds=us)


class SqliteTransactions:
    """The transactions of one SQLite adapter on its `Database`."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction holding SQLite's write lock from its first statement."""
        async with self._write_lock, self._transaction("BEGIN IMMEDIATE") as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one consistent WAL snapshot for all its statements."""
        async with self._transaction("BEGIN") as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[AsyncConnection]:
        with translate_errors():
            async with self._database.engine.connect() as connection:
                await connection.execution_options(**{SQLITE_BEGIN: begin})
                async with connection.begin():
                    yield connection
