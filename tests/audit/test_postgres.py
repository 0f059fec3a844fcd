"""The audit log's contract on PostgreSQL, plus what only PostgreSQL does: concurrent writers
that never fork a tree, tenants that never wait on each other, monthly partitions made on
demand, and rows edited, deleted, inserted and reordered behind the service's back showing in
`scan` where they happened."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from outrigger.db import conninfo
from outrigger.merkle import leaf_hash
from outrigger.testing import unique
from services.audit.adapters.postgres import PostgresAuditLog
from services.audit.domain.rules import columns, parse_leaf
from tests.audit import rfc9162
from tests.audit.contract import AuditLogContract
from tests.audit.storage_support import AuditLogSuite, leaf, leaves

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from services.audit.domain.models import ScannedRow

pytestmark = pytest.mark.postgres


class PostgresDatabase:
    @pytest.fixture(autouse=True)
    def _database(self, audit_postgres_url: str) -> None:
        self.url = audit_postgres_url

    async def make_adapter(self, **options: Any) -> PostgresAuditLog:
        return await PostgresAuditLog.open(self.url, **{"max_size": 4, **options})

    @pytest.fixture
    async def sql(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the test's own, outside the service (autocommit)."""
        async with await psycopg.AsyncConnection.connect(
            conninfo(self.url), autocommit=True
        ) as connection:
            yield connection


class TestPostgresAuditLog(PostgresDatabase, AuditLogContract):
    WRITE_ERROR = psycopg.errors.CheckViolation

    async def test_concurrent_writers_never_fork_a_tree(
        self, new_adapter: Callable[..., Awaitable[PostgresAuditLog]], tenant: str
    ) -> None:
        logs = [await new_adapter(max_size=3) for _ in range(4)]
        batches = [leaves(tenant, 25) for _ in range(24)]
        answers = await asyncio.gather(
            *(logs[n % 4].append(batch) for n, batch in enumerate(batches))
        )
        for batch in answers:  # each batch took consecutive indexes: one writer at a time
            assert [a.index for a in batch] == list(range(batch[0].index, batch[0].index + 25))
        by_index = {a.index: a.leaf_hash for batch in answers for a in batch}
        assert sorted(by_index) == list(range(600))
        head = await logs[1].head(tenant)
        in_order = [by_index[i] for i in range(600)]
        assert (head.size, head.root) == (600, rfc9162.mth(in_order))
        assert [row[1] for row in await logs[2].scan(tenant, 0, 600)] == in_order

    async def test_one_record_sent_at_once_to_two_tenants_is_stored_once(
        self, new_adapter: Callable[..., Awaitable[PostgresAuditLog]]
    ) -> None:
        logs = [await new_adapter(max_size=2) for _ in range(3)]
        tenants = [unique("a"), unique("b")]
        ids = [unique("shared-") for _ in range(40)]
        batches = []
        for n in range(6):
            order = random.sample(ids, len(ids))
            batches.append([leaf(tenants[n % 2], id=id) for id in order])
        answers = await asyncio.gather(
            *(logs[n % 3].append(batch) for n, batch in enumerate(batches))
        )
        receipts: dict[str, set[tuple[str, int, bytes]]] = {}
        for batch in answers:
            for a in batch:
                receipts.setdefault(a.id, set()).add((a.tenant, a.index, a.leaf_hash))
        assert all(len(found) == 1 for found in receipts.values())
        stored = sum(not a.duplicate for batch in answers for a in batch)
        sizes = [(await logs[0].head(t)).size for t in tenants]
        assert stored == sum(sizes) == len(ids)
        for id in ids[:5]:
            assert len(await logs[0].find(None, id)) == 1

    async def test_tenants_never_wait_for_each_other(
        self, log: PostgresAuditLog, tenant: str, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        other = unique("o")
        await log.append([leaf(tenant)])
        async with sql.transaction():
            await sql.execute("SELECT 1 FROM audit.trees WHERE tenant = %s FOR UPDATE", (tenant,))
            waiting = asyncio.create_task(log.append([leaf(tenant)]))
            [elsewhere] = await asyncio.wait_for(log.append([leaf(other)]), 5)
            assert (elsewhere.tenant, elsewhere.index) == (other, 0)
            await asyncio.sleep(0.3)
            assert not waiting.done()
        [after] = await asyncio.wait_for(waiting, 5)
        assert after.index == 1

    async def partitions(self, sql: psycopg.AsyncConnection[Any], year: int) -> list[str]:
        cursor = await sql.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'audit' "
            "AND tablename LIKE %s ORDER BY 1",
            (f"records_{year}_%",),
        )
        return [name for (name,) in await cursor.fetchall()]

    async def test_each_month_gets_its_partition_on_demand_and_the_next_ahead(
        self, log: PostgresAuditLog, tenant: str, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        may, july = datetime(2002, 5, 10, tzinfo=UTC), datetime(2002, 7, 1, tzinfo=UTC)
        await log.append([leaf(tenant, may), leaf(tenant, july)])
        assert await self.partitions(sql, 2002) == [
            "records_2002_05",
            "records_2002_07",
            "records_2002_08",
        ]
        assert [r.index for r in await log.records(tenant, 0, 2)] == [0, 1]

    async def test_a_busy_table_never_delays_an_append_for_the_partition_ahead(
        self, log: PostgresAuditLog, tenant: str, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        await log.append([leaf(tenant, datetime(2005, 1, 10, tzinfo=UTC))])
        async with sql.transaction():
            await sql.execute("LOCK TABLE audit.records IN ACCESS SHARE MODE")  # a long export
            [answer] = await asyncio.wait_for(
                log.append([leaf(tenant, datetime(2005, 2, 10, tzinfo=UTC))]), 2
            )
        assert answer.index == 1
        assert await self.partitions(sql, 2005) == ["records_2005_01", "records_2005_02"]

    async def test_a_month_dropped_by_another_replica_is_made_again(
        self, new_adapter: Callable[..., Awaitable[PostgresAuditLog]], tenant: str
    ) -> None:
        january = datetime(2003, 1, 10, tzinfo=UTC)
        writer, retention = await new_adapter(), await new_adapter()
        await writer.append([leaf(tenant, january)])
        assert await retention.drop_before(datetime(2003, 2, 1, tzinfo=UTC)) >= 1
        [answer] = await writer.append([leaf(tenant, january)])
        assert answer.index == 1
        assert [r.index for r in await writer.records(tenant, 0, 2)] == [1]
        assert await writer.retained_from(tenant) == 1


def first_mismatch(rows: list[ScannedRow], size: int) -> tuple[int, str] | None:
    """Where `scan` shows the rows and the tree disagree, as verification reads it."""
    claims = Counter(index for index, _, body, *_ in rows if body is not None)
    for index, node_hash, body, *stored_columns in rows:
        if node_hash is None or index >= size:
            return index, "a row outside the tree"
        if claims[index] != 1:
            return index, f"{claims[index]} rows claim the index"
        assert body is not None
        if leaf_hash(body) != node_hash:
            return index, "the body does not hash to the leaf"
        if tuple(stored_columns) != columns(parse_leaf(body)):
            return index, "the columns disagree with the body"
    return None


class TestTamperingShowsInScan(PostgresDatabase, AuditLogSuite):
    """Rows changed in the database directly, each found at the index it touched."""

    @pytest.fixture
    async def tree(self, log: PostgresAuditLog, tenant: str) -> int:
        await log.append(leaves(tenant, 8))
        assert first_mismatch(await log.scan(tenant, 0, 2**62), 8) is None
        return 8

    async def found(self, log: PostgresAuditLog, tenant: str, size: int) -> tuple[int, str] | None:
        return first_mismatch(await log.scan(tenant, 0, 2**62), size)

    async def test_an_edited_body(
        self, log: PostgresAuditLog, tenant: str, tree: int, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        await sql.execute(
            "UPDATE audit.records SET body = convert_to(replace(convert_from(body, 'UTF8'), "
            "'alice', 'mallory'), 'UTF8') "
            "WHERE tenant = %s AND idx = 2",
            (tenant,),
        )
        assert await self.found(log, tenant, tree) == (2, "the body does not hash to the leaf")

    async def test_an_edited_column(
        self, log: PostgresAuditLog, tenant: str, tree: int, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        await sql.execute(
            "UPDATE audit.records SET actor = 'mallory' WHERE tenant = %s AND idx = 5", (tenant,)
        )
        assert await self.found(log, tenant, tree) == (5, "the columns disagree with the body")

    async def test_a_deleted_row(
        self, log: PostgresAuditLog, tenant: str, tree: int, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        await sql.execute("DELETE FROM audit.records WHERE tenant = %s AND idx = 3", (tenant,))
        assert await self.found(log, tenant, tree) == (3, "0 rows claim the index")

    async def test_an_inserted_row(
        self, log: PostgresAuditLog, tenant: str, tree: int, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        await sql.execute(
            "INSERT INTO audit.records SELECT tenant, 1, source, id || '-forged', type, actor, "
            "resource, outcome, time, recorded_at, body, leaf_hash FROM audit.records "
            "WHERE tenant = %s AND idx = 6",
            (tenant,),
        )
        assert await self.found(log, tenant, tree) == (1, "2 rows claim the index")

    async def test_a_row_appended_beyond_the_tree(
        self, log: PostgresAuditLog, tenant: str, tree: int, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        await sql.execute(
            "INSERT INTO audit.records SELECT tenant, 8, source, id || '-forged', type, actor, "
            "resource, outcome, time, recorded_at, body, leaf_hash FROM audit.records "
            "WHERE tenant = %s AND idx = 0",
            (tenant,),
        )
        assert await self.found(log, tenant, tree) == (8, "a row outside the tree")
        [beyond] = await log.scan(tenant, 8, 2**62)
        assert (beyond[0], beyond[1], beyond[2] is not None) == (8, None, True)

    async def test_two_rows_swapped(
        self, log: PostgresAuditLog, tenant: str, tree: int, sql: psycopg.AsyncConnection[Any]
    ) -> None:
        await sql.execute(
            "UPDATE audit.records SET idx = CASE idx WHEN 4 THEN 6 ELSE 4 END "
            "WHERE tenant = %s AND idx IN (4, 6)",
            (tenant,),
        )
        assert await self.found(log, tenant, tree) == (4, "the body does not hash to the leaf")
