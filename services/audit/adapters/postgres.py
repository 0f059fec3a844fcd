"""The audit log on PostgreSQL (the kit's psycopg pool; schema `audit`).

An append is one READ COMMITTED transaction: it creates the batch's trees if they are new, locks
their rows in tenant order (one writer per tenant, across replicas, and no deadlock between two
batches), asks which `(source, id)` keys are stored already, reads the frontier of each growing
tree, works out the new leaves and nodes (`appending.plan`, `merkle.extend`) and writes rows,
keys, nodes and sizes in one statement. Records go to monthly partitions of `audit.records`,
each created (in its own short transaction) before the first insert into its month.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any

import psycopg

from outrigger import db, merkle
from services.audit.adapters import postgres_sql as sql
from services.audit.adapters.appending import frontier_nodes, plan, tenants_of
from services.audit.adapters.postgres_partitions import Partitions, month_of, no_partition
from services.audit.adapters.rows import (
    page_key_time,
    record_page,
    stored_record,
    tree_head,
)
from services.audit.domain.models import Appended, Checkpoint, TreeHead

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from outrigger.merkle import Node
    from outrigger.settings import Settings
    from services.audit.adapters.appending import Plan
    from services.audit.domain.models import (
        Leaf,
        RecordFilter,
        RecordPage,
        ScannedRow,
        StoredRecord,
    )

APPLICATION_NAME = "outrigger-audit"
# An append runs again (at most this often in all) when a concurrent one stored a key of its
# batch first (in another tenant), retention dropped a partition it expected, or two batches
# creating new trees deadlocked.
ATTEMPTS = 3


class PostgresAuditLog:
    """Implements `AuditLog` on PostgreSQL. Build it with `open()`, release it with `close()`."""

    def __init__(self, pool: db.Pool) -> None:
        self._pool = pool
        self._partitions = Partitions(pool)
        self._trees: set[str] = set()  # tenants whose tree row exists (rows are never deleted)

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 20, wait_seconds: float = 5.0
    ) -> PostgresAuditLog:
        """A pool of `min_size`-`max_size` connections to `url`, opened without waiting for
        the server (see `outrigger.db.Pool`)."""
        pool = db.Pool(
            url,
            application_name=APPLICATION_NAME,
            min_size=min_size,
            max_size=max_size,
            wait_seconds=wait_seconds,
            names=sql.QUERY_NAMES,
        )
        await pool.open()
        return cls(pool)

    @classmethod
    async def from_settings(cls, settings: Settings) -> PostgresAuditLog:
        pool = db.Pool.from_settings(
            settings, application_name=APPLICATION_NAME, names=sql.QUERY_NAMES
        )
        await pool.open()
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def check(self) -> None:
        await self._pool.check()

    async def append(self, leaves: Sequence[Leaf]) -> list[Appended]:
        if not leaves:
            return []
        months = {month_of(leaf.recorded_at) for leaf in leaves}
        for _ in range(ATTEMPTS - 1):
            await self._partitions.ensure(months)
            try:
                return await self._append_once(leaves)
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != "record_keys_pkey":
                    raise
            except psycopg.errors.CheckViolation as exc:
                if not no_partition(exc):
                    raise
                self._partitions.forget()
            except psycopg.errors.DeadlockDetected:
                pass  # two batches creating the same new trees: PostgreSQL undid one
        await self._partitions.ensure(months)
        return await self._append_once(leaves)

    async def _append_once(self, leaves: Sequence[Leaf]) -> list[Appended]:
        async with self._pool.connection() as connection:
            async with connection.transaction():
                answers = await self._append(connection, leaves)
            self._trees.update(tenants_of(leaves))
            return answers

    async def _append(
        self, connection: psycopg.AsyncConnection[Any], leaves: Sequence[Leaf]
    ) -> list[Appended]:
        tenants = tenants_of(leaves)
        new = [tenant for tenant in tenants if tenant not in self._trees]
        if new:
            await connection.execute(sql.ADD_TREES, (new,))
        cursor = await connection.execute(sql.LOCK_TREES, (tenants,))
        sizes: dict[str, int] = dict(await cursor.fetchall())
        keys = list(dict.fromkeys(leaf.key for leaf in leaves))
        cursor = await connection.execute(
            sql.STORED_KEYS, ([source for source, _ in keys], [id for _, id in keys])
        )
        stored = {
            (source, id): Appended(source, id, tenant, index, digest, True)
            for source, id, tenant, index, digest in await cursor.fetchall()
        }
        growing = {leaf.record.tenant for leaf in leaves if leaf.key not in stored}
        wanted = frontier_nodes({tenant: sizes[tenant] for tenant in growing})
        frontier = {
            (tenant, node): digest
            for tenant, node, digest in await _fetch_nodes(connection, wanted)
        }
        work = plan(leaves, stored, sizes, frontier)
        if work.leaves:
            await connection.execute(sql.WRITE, _write_params(work))
        return work.answers

    async def head(self, tenant: str) -> TreeHead:
        rows = await self._fetchall(sql.HEAD, (tenant,))
        return tree_head(*rows[0]) if rows else TreeHead(tenant, 0, merkle.EMPTY_ROOT)

    async def heads(self) -> list[TreeHead]:
        return [tree_head(*row) for row in await self._fetchall(sql.HEADS)]

    async def nodes(self, tenant: str, nodes: Collection[Node]) -> dict[Node, bytes]:
        with db.translated():
            async with self._pool.connection() as connection:
                found = await _fetch_nodes(connection, [(tenant, node) for node in nodes])
        return {node: digest for _, node, digest in found}

    async def find(self, source: str | None, id: str) -> list[StoredRecord]:
        rows = await self._fetchall(sql.FIND, {"id": id, "source": source})
        return [stored_record(*row) for row in rows]

    async def query(self, where: RecordFilter) -> RecordPage:
        params: dict[str, Any] = {
            "tenant": where.tenant,
            "type": where.type,
            "actor": where.actor,
            "resource": where.resource,
            "outcome": where.outcome,
            "since": where.since,
            "until": where.until,
            "before": where.before,
        }
        key_time = page_key_time(where)
        given = tuple(name for name, value in params.items() if value is not None)[1:]
        params["before_time"] = key_time
        params["limit"] = where.limit + 1
        rows = await self._fetchall(sql.QUERIES[given], params)
        return record_page(rows, where)

    async def records(self, tenant: str, first: int, end: int) -> list[StoredRecord]:
        return [
            stored_record(*row) for row in await self._fetchall(sql.RECORDS, (tenant, first, end))
        ]

    async def scan(self, tenant: str, first: int, end: int) -> list[ScannedRow]:
        params = {"tenant": tenant, "first": first, "end": end}
        rows: list[ScannedRow] = await self._fetchall(sql.SCAN, params, binary=True)
        rows.sort(key=itemgetter(0))
        return rows

    async def completed_nodes(
        self, tenant: str, first: int, end: int
    ) -> list[tuple[int, int, bytes]]:
        params = {"tenant": tenant, "first": first, "end": end}
        return await self._fetchall(sql.COMPLETED_NODES, params, binary=True)

    async def retained_from(self, tenant: str) -> int:
        rows = await self._fetchall(sql.RETAINED_FROM, (tenant,))
        return int(rows[0][0]) if rows else 0

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        await self._fetchall(sql.ADD_CHECKPOINT, (c.tenant, c.size, c.root, c.issued_at, c.note))

    async def latest_checkpoint(self, tenant: str) -> Checkpoint | None:
        rows = await self._fetchall(sql.LATEST_CHECKPOINT, (tenant,))
        return Checkpoint(*rows[0]) if rows else None

    async def checkpoint_covering(self, tenant: str, index: int) -> Checkpoint | None:
        rows = await self._fetchall(sql.CHECKPOINT_COVERING, (tenant, index))
        return Checkpoint(*rows[0]) if rows else None

    async def checkpoints(self, tenant: str, *, after_size: int = 0) -> list[Checkpoint]:
        rows = await self._fetchall(sql.CHECKPOINTS_AFTER, (tenant, after_size))
        return [Checkpoint(*row) for row in rows]

    async def drop_before(self, cutoff: datetime) -> int:
        return await self._partitions.drop_before(cutoff)

    async def _fetchall(self, query: str, params: Any = None, *, binary: bool = False) -> list[Any]:
        """The rows of one statement (`binary`: results in PostgreSQL's binary format, which
        costs nothing to parse for bytea and timestamps)."""
        with db.translated():
            async with self._pool.connection() as connection:
                cursor = await connection.execute(query, params, binary=binary)
                return await cursor.fetchall() if cursor.description else []


async def _fetch_nodes(
    connection: psycopg.AsyncConnection[Any], wanted: Sequence[tuple[str, Node]]
) -> list[tuple[str, Node, bytes]]:
    if not wanted:
        return []
    params = (
        [tenant for tenant, _ in wanted],
        [node.level for _, node in wanted],
        [node.index for _, node in wanted],
    )
    cursor = await connection.execute(sql.NODES, params)
    return [
        (tenant, merkle.Node(level, index), digest)
        for tenant, level, index, digest in await cursor.fetchall()
    ]


def _write_params(work: Plan) -> dict[str, Any]:
    records = [new.leaf.record for new in work.leaves]
    return {
        "tenant": [r.tenant for r in records],
        "idx": [new.index for new in work.leaves],
        "source": [r.source for r in records],
        "id": [r.id for r in records],
        "type": [r.type for r in records],
        "actor": [r.actor for r in records],
        "resource": [r.resource for r in records],
        "outcome": [r.outcome for r in records],
        "time": [r.time for r in records],
        "recorded_at": [new.leaf.recorded_at for new in work.leaves],
        "body": [new.leaf.body for new in work.leaves],
        "leaf_hash": [new.leaf.hash for new in work.leaves],
        "node_tenant": [tenant for tenant, _, _ in work.nodes],
        "node_level": [node.level for _, node, _ in work.nodes],
        "node_idx": [node.index for _, node, _ in work.nodes],
        "node_hash": [digest for _, _, digest in work.nodes],
        "tree": list(work.sizes),
        "size": list(work.sizes.values()),
    }
