"""The SQL `SubjectKeyStore` (PostgreSQL via psycopg, SQLite via aiosqlite).

A service that keeps subject keys adds `subject_keys_table(metadata, schema=...)` to its metadata
and creates the table in its Alembic branch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, DateTime, Index, LargeBinary, String, Table, Text, func, select
from sqlalchemy.dialects import postgresql, sqlite

from outrigger.db import translate_errors
from outrigger.stealth.store import WrappedKey, check_replacement

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Row
    from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_TABLE = "stealth_subject_keys"


def subject_keys_table(
    metadata: MetaData, *, schema: str | None = None, name: str = DEFAULT_TABLE
) -> Table:
    """One row per subject: its data key, wrapped by the master key `master_kid`."""
    return Table(
        name,
        metadata,
        Column("subject", Text, primary_key=True),
        Column("key_id", String(64), nullable=False),
        Column("master_kid", String(32), nullable=False),
        Column("wrapped_key", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index(f"ix_{name}_master_kid", "master_kid"),
        schema=schema,
    )


class SqlSubjectKeyStore:
    def __init__(self, engine: AsyncEngine, table: Table) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"subject keys need PostgreSQL or SQLite, not {engine.dialect.name}")
        self._engine = engine
        self._table = table

    async def get(self, subject: str) -> WrappedKey | None:
        query = select(self._table).where(self._table.c.subject == subject)
        with translate_errors():
            async with self._engine.connect() as connection:
                row = (await connection.execute(_named(query, "get"))).first()
        return _key(row) if row else None

    async def get_or_create(self, candidate: WrappedKey) -> WrappedKey:
        existing = await self.get(candidate.subject)
        if existing is not None:
            return existing
        row = {
            "subject": candidate.subject,
            "key_id": candidate.key_id,
            "master_kid": candidate.master_kid,
            "wrapped_key": candidate.wrapped,
        }
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(self._table).values(row).on_conflict_do_nothing(index_elements=["subject"])
        )
        with translate_errors():
            async with self._engine.begin() as connection:
                await connection.execute(_named(statement, "create"))
        stored = await self.get(candidate.subject)
        return stored if stored is not None else await self.get_or_create(candidate)

    async def delete(self, subject: str) -> bool:
        statement = self._table.delete().where(self._table.c.subject == subject)
        with translate_errors():
            async with self._engine.begin() as connection:
                result = await connection.execute(_named(statement, "delete"))
        return result.rowcount > 0

    async def not_wrapped_by(self, master_kid: str, limit: int) -> list[WrappedKey]:
        query = (
            select(self._table)
            .where(self._table.c.master_kid != master_kid)
            .order_by(self._table.c.subject)
            .limit(limit)
        )
        with translate_errors():
            async with self._engine.connect() as connection:
                rows = (await connection.execute(_named(query, "not_wrapped_by"))).all()
        return [_key(row) for row in rows]

    async def replace(self, current: WrappedKey, new: WrappedKey) -> bool:
        check_replacement(current, new)
        columns = self._table.c
        statement = (
            self._table.update()
            .where(
                columns.subject == current.subject,
                columns.key_id == current.key_id,
                columns.master_kid == current.master_kid,
            )
            .values(master_kid=new.master_kid, wrapped_key=new.wrapped)
        )
        with translate_errors():
            async with self._engine.begin() as connection:
                result = await connection.execute(_named(statement, "replace"))
        return result.rowcount > 0


def _named(statement: Any, name: str) -> Any:
    return statement.execution_options(query=f"stealth_subject_key_{name}")


def _key(row: Row[Any]) -> WrappedKey:
    return WrappedKey(row.subject, row.key_id, row.master_kid, bytes(row.wrapped_key))
