"""The database contract, on PostgreSQL and on the embedded SQLite file."""

from __future__ import annotations

import abc
import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text

from outrigger.db import Database, build_engine
from outrigger.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

SCHEMA = "kit_test"


class DatabaseContract(abc.ABC):
    """Written once; each subclass says how to reach its backend."""

    @abc.abstractmethod
    def make_url(self) -> str:
        """Each adapter's subclass builds its own."""

    @pytest.fixture
    async def db(self) -> AsyncIterator[tuple[Database, Table]]:
        database = Database(build_engine(self.make_url(), schemas=[SCHEMA]))
        table = Table(
            f"items_{uuid.uuid4().hex[:8]}",
            MetaData(schema=SCHEMA),
            Column("id", Integer, primary_key=True),
            Column("name", String(50), nullable=False),
        )
        async with database.unit_of_work() as connection:
            if database.dialect == "postgresql":
                await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            await connection.run_sync(table.metadata.create_all)
        yield database, table
        async with database.unit_of_work() as connection:
            await connection.run_sync(table.metadata.drop_all)
        await database.dispose()

    async def _names(self, database: Database, table: Table) -> list[str]:
        async with database.unit_of_work() as connection:
            return list((await connection.execute(select(table.c.name))).scalars())

    async def test_a_unit_of_work_commits(self, db: tuple[Database, Table]) -> None:
        database, table = db
        async with database.unit_of_work() as connection:
            await connection.execute(insert(table), [{"name": "a"}, {"name": "b"}])
        assert sorted(await self._names(database, table)) == ["a", "b"]

    async def test_an_error_rolls_everything_back(self, db: tuple[Database, Table]) -> None:
        database, table = db

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            async with database.unit_of_work() as connection:
                await connection.execute(insert(table), [{"name": "half-written"}])
                raise Boom
        assert await self._names(database, table) == []

    async def test_a_failed_statement_rolls_back_the_earlier_ones(
        self, db: tuple[Database, Table]
    ) -> None:
        database, table = db
        with pytest.raises(Exception, match=r"(?i)null|constraint"):
            async with database.unit_of_work() as connection:
                await connection.execute(insert(table), [{"name": "first"}])
                await connection.execute(insert(table), [{"name": None}])
        assert await self._names(database, table) == []

    async def test_ready_when_reachable(self, db: tuple[Database, Table]) -> None:
        await db[0].check()

    async def test_statements_are_timed_by_name(self, db: tuple[Database, Table]) -> None:
        database, table = db
        before = (
            REGISTRY.get_sample_value(
                "outrigger_db_query_duration_seconds_count", {"query": "kit_count"}
            )
            or 0
        )
        async with database.unit_of_work() as connection:
            await connection.execute(select(table).execution_options(query="kit_count"))
        after = REGISTRY.get_sample_value(
            "outrigger_db_query_duration_seconds_count", {"query": "kit_count"}
        )
        assert after == before + 1


@pytest.mark.postgres
class TestPostgres(DatabaseContract):
    @pytest.fixture(autouse=True)
    def _url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_url(self) -> str:
        return self.url

    async def test_unreachable_server_is_a_database_error(self) -> None:
        database = Database(
            build_engine("postgresql+psycopg://postgres@127.0.0.1:1/test", pool_timeout=1)
        )
        with pytest.raises(DatabaseError, match="database unavailable"):
            await database.check()
        with pytest.raises(DatabaseError):
            async with database.unit_of_work():
                pass
        await database.dispose()


class TestSqlite(DatabaseContract):
    @pytest.fixture(autouse=True)
    def _path(self, tmp_path: Path) -> None:
        self.path = tmp_path / "data" / "outrigger.db"

    def make_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.path}"

    async def test_each_schema_is_a_file_beside_the_main_one(
        self, db: tuple[Database, Table]
    ) -> None:
        assert (self.path.parent / f"outrigger.{SCHEMA}.db").exists()

    async def test_every_attached_file_is_in_wal_mode(self, db: tuple[Database, Table]) -> None:
        async with db[0].engine.connect() as connection:
            main = await connection.exec_driver_sql("PRAGMA journal_mode")
            attached = await connection.exec_driver_sql(f'PRAGMA "{SCHEMA}".journal_mode')
            assert (main.scalar(), attached.scalar()) == ("wal", "wal")

    async def test_a_unit_of_work_holds_the_write_lock_from_its_start(
        self, db: tuple[Database, Table]
    ) -> None:
        database, table = db
        order: list[str] = []

        async def first() -> None:
            async with database.unit_of_work() as connection:
                await connection.execute(select(table.c.name))
                order.append("first read")
                await asyncio.sleep(0.2)
                await connection.execute(insert(table), [{"name": "first"}])
                order.append("first wrote")

        async def second() -> None:
            await asyncio.sleep(0.05)
            async with database.unit_of_work() as connection:
                order.append("second began")
                await connection.execute(insert(table), [{"name": "second"}])

        await asyncio.gather(first(), second())
        assert order == ["first read", "first wrote", "second began"]

    async def test_unwritable_file_is_a_database_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("")
        database = Database(build_engine(f"sqlite+aiosqlite:///{blocker}/nested/x.db"))
        with pytest.raises(DatabaseError, match="unreachable"):
            await database.check()
        await database.dispose()
