"""Transactions of the SQLite adapter: one writer at a time, readers on WAL snapshots.

Write transactions begin with `BEGIN IMMEDIATE` (the kit's default on SQLite), which takes
SQLite's write lock up front, so an append's reads and writes see no other writer in any process;
an in-process lock queues this process's writers instead of letting them spin on the busy
timeout. Reads run in a plain `BEGIN`: one consistent WAL snapshot for all their statements.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from outrigger.db import SQLITE_BEGIN, translate_errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncConnection

    from outrigger.db import Database


class SqliteTransactions:
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
