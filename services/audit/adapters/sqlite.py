"""The embedded audit log on SQLite (kit `Database`, aiosqlite), same contract as PostgreSQL.

SQLite has one writer at a time: an append runs in a `BEGIN IMMEDIATE` transaction (the write
lock, across processes too; see `outrigger.db.sqlite`), so every tenant's tree has one writer.
Readers use WAL snapshots and never see half an append. Retention deletes the rows recorded
before the cutoff (there are no partitions); the nodes stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from outrigger import merkle
from outrigger.db import Database, SqliteTransactions
from outrigger.db.sqlite import microseconds, timestamp
from outrigger.settings import Settings
from services.audit.adapters import sqlite_sql as sql
from services.audit.adapters.appending import frontier_nodes, plan, tenants_of
from services.audit.adapters.rows import (
    page_key_time,
    record_page,
    stored_record,
    tree_head,
)
from services.audit.domain.models import Appended, Checkpoint

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

    from outrigger.merkle import Node
    from services.audit.adapters.appending import Plan
    from services.audit.domain.models import (
        Leaf,
        RecordFilter,
        RecordPage,
        ScannedRow,
        StoredRecord,
        TreeHead,
    )

SCHEMA = "audit"


class SqliteAuditLog:
    """Implements `AuditLog` on SQLite, on a database migrated by the `audit` branch."""

    def __init__(self, database: Database, *, owned: bool = False) -> None:
        self._db = database
        self._owned = owned
        self._tx = SqliteTransactions(database)

    @classmethod
    def open(cls, url: str) -> SqliteAuditLog:
        """A log on the `sqlite+aiosqlite:///…` file (migrated), owning its engine."""
        return cls.from_settings(Settings(database_url=url))

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteAuditLog:
        return cls(Database.from_settings(settings, schemas=[SCHEMA]), owned=True)

    async def close(self) -> None:
        if self._owned:
            await self._db.dispose()

    async def check(self) -> None:
        await self._db.check()

    async def append(self, leaves: Sequence[Leaf]) -> list[Appended]:
        if not leaves:
            return []
        async with self._tx.writing() as connection:
            tenants = tenants_of(leaves)
            found = await connection.execute(sql.TREES, {"tenants": tenants})
            sizes = dict.fromkeys(tenants, 0) | {row.tenant: row.size for row in found}
            keys = {leaf.key for leaf in leaves}
            rows = await connection.execute(sql.STORED_KEYS, {"ids": [id for _, id in keys]})
            stored = {
                (source, id): Appended(source, id, tenant, index, digest, True)
                for source, id, tenant, index, digest in rows
                if (source, id) in keys
            }
            growing = {leaf.record.tenant for leaf in leaves if leaf.key not in stored}
            wanted = frontier_nodes({tenant: sizes[tenant] for tenant in growing})
            frontier = await _fetch_nodes(connection, wanted)
            work = plan(leaves, stored, sizes, frontier)
            if work.leaves:
                await _write(connection, work)
        return work.answers

    async def head(self, tenant: str) -> TreeHead:
        async with self._tx.reading() as connection:
            row = (await connection.execute(sql.SIZE, {"tenant": tenant})).first()
            size = row.size if row is not None else 0
            return await _head(connection, tenant, size)

    async def heads(self) -> list[TreeHead]:
        async with self._tx.reading() as connection:
            sizes = (await connection.execute(sql.SIZES)).all()
            return [await _head(connection, tenant, size) for tenant, size in sizes]

    async def nodes(self, tenant: str, nodes: Collection[Node]) -> dict[Node, bytes]:
        async with self._tx.reading() as connection:
            found = await _fetch_nodes(connection, [(tenant, node) for node in nodes])
        return {node: digest for (_, node), digest in found.items()}

    async def find(self, source: str | None, id: str) -> list[StoredRecord]:
        async with self._tx.reading() as connection:
            rows = (await connection.execute(sql.FIND, {"id": id, "source": source})).all()
        return [stored_record(*row) for row in rows]

    async def query(self, where: RecordFilter) -> RecordPage:
        params: dict[str, Any] = {
            "tenant": where.tenant,
            "type": where.type,
            "actor": where.actor,
            "resource": where.resource,
            "outcome": where.outcome,
            "since": microseconds(where.since) if where.since is not None else None,
            "until": microseconds(where.until) if where.until is not None else None,
            "before": where.before,
        }
        key_time = page_key_time(where)
        given = tuple(name for name, value in params.items() if value is not None)[1:]
        params["before_time"] = None if key_time is None else microseconds(key_time)
        params["limit"] = where.limit + 1
        async with self._tx.reading() as connection:
            rows = (await connection.execute(sql.QUERIES[given], params)).all()
        return record_page(rows, where)

    async def records(self, tenant: str, first: int, end: int) -> list[StoredRecord]:
        params = {"tenant": tenant, "first": first, "end": end}
        async with self._tx.reading() as connection:
            rows = (await connection.execute(sql.RECORDS, params)).all()
        return [stored_record(*row) for row in rows]

    async def scan(self, tenant: str, first: int, end: int) -> list[ScannedRow]:
        params = {"tenant": tenant, "first": first, "end": end}
        async with self._tx.reading() as connection:
            found = (await connection.execute(sql.SCAN_NODES, params)).all()
            rows = (await connection.execute(sql.SCAN_ROWS, params)).all()
        nodes: dict[int, bytes] = dict(found)
        claimed = {row.idx for row in rows}
        merged: list[ScannedRow] = [
            (index, digest, None, None, None, None, None, None)
            for index, digest in nodes.items()
            if index not in claimed
        ]
        merged += [
            (idx, nodes.get(idx), body, type_, actor, resource, outcome, timestamp(time))
            for idx, body, type_, actor, resource, outcome, time in rows
        ]
        merged.sort(key=lambda row: row[0])
        return merged

    async def completed_nodes(
        self, tenant: str, first: int, end: int
    ) -> list[tuple[int, int, bytes]]:
        params = {"tenant": tenant, "first": first, "end": end}
        async with self._tx.reading() as connection:
            rows = (await connection.execute(sql.COMPLETED_NODES, params)).all()
        return [(level, index, digest) for level, index, digest in rows]

    async def retained_from(self, tenant: str) -> int:
        async with self._tx.reading() as connection:
            row = (await connection.execute(sql.SIZE, {"tenant": tenant})).first()
        return row.retained_from if row is not None else 0

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        params = {
            "tenant": c.tenant,
            "size": c.size,
            "root": c.root,
            "issued_at": microseconds(c.issued_at),
            "note": c.note,
        }
        async with self._tx.writing() as connection:
            await connection.execute(sql.ADD_CHECKPOINT, params)

    async def latest_checkpoint(self, tenant: str) -> Checkpoint | None:
        found = await self._checkpoints(sql.LATEST_CHECKPOINT, {"tenant": tenant})
        return found[0] if found else None

    async def checkpoint_covering(self, tenant: str, index: int) -> Checkpoint | None:
        found = await self._checkpoints(sql.CHECKPOINT_COVERING, {"tenant": tenant, "index": index})
        return found[0] if found else None

    async def checkpoints(self, tenant: str, *, after_size: int = 0) -> list[Checkpoint]:
        return await self._checkpoints(
            sql.CHECKPOINTS_AFTER, {"tenant": tenant, "after": after_size}
        )

    async def _checkpoints(self, query: Any, params: dict[str, Any]) -> list[Checkpoint]:
        async with self._tx.reading() as connection:
            rows = (await connection.execute(query, params)).all()
        return [
            Checkpoint(tenant, size, root, timestamp(issued_at), note)
            for tenant, size, root, issued_at, note in rows
        ]

    async def drop_before(self, cutoff: datetime) -> int:
        params = {"cutoff": microseconds(cutoff)}
        async with self._tx.writing() as connection:
            dropped = (await connection.execute(sql.DROPPED, params)).all()
            if not dropped:
                return 0
            await connection.execute(sql.DROP, params)
            await connection.execute(
                sql.RETAIN,
                [
                    {"tenant": tenant, "retained_from": highest + 1}
                    for tenant, highest, _ in dropped
                ],
            )
        return sum(count for _, _, count in dropped)


async def _fetch_nodes(
    connection: AsyncConnection, wanted: Sequence[tuple[str, Node]]
) -> dict[tuple[str, Node], bytes]:
    if not wanted:
        return {}
    pairs = orjson.dumps([[tenant, node.level, node.index] for tenant, node in wanted]).decode()
    rows = await connection.execute(sql.NODES, {"wanted": pairs})
    return {(tenant, merkle.Node(level, index)): digest for tenant, level, index, digest in rows}


async def _head(connection: AsyncConnection, tenant: str, size: int) -> TreeHead:
    wanted = [(tenant, node) for node in merkle.root_nodes(size)]
    found = await _fetch_nodes(connection, wanted)
    return tree_head(tenant, size, [found[key] for key in wanted if key in found])


async def _write(connection: AsyncConnection, work: Plan) -> None:
    """Keys and nodes, then the rows, then the sizes (a failure anywhere undoes them all)."""
    await connection.execute(
        sql.INSERT_KEY,
        [
            {
                "source": new.leaf.record.source,
                "id": new.leaf.record.id,
                "tenant": new.leaf.record.tenant,
                "idx": new.index,
                "leaf_hash": new.leaf.hash,
            }
            for new in work.leaves
        ],
    )
    await connection.execute(
        sql.INSERT_NODE,
        [
            {"tenant": tenant, "level": node.level, "idx": node.index, "hash": digest}
            for tenant, node, digest in work.nodes
        ],
    )
    await connection.execute(
        sql.INSERT_RECORD, [_record_row(new.index, new.leaf) for new in work.leaves]
    )
    await connection.execute(
        sql.SAVE_TREE, [{"tenant": tenant, "size": size} for tenant, size in work.sizes.items()]
    )


def _record_row(index: int, leaf: Leaf) -> dict[str, Any]:
    record = leaf.record
    return {
        "tenant": record.tenant,
        "idx": index,
        "source": record.source,
        "id": record.id,
        "type": record.type,
        "actor": record.actor,
        "resource": record.resource,
        "outcome": record.outcome,
        "time": microseconds(record.time),
        "recorded_at": microseconds(leaf.recorded_at),
        "body": leaf.body,
        "leaf_hash": leaf.hash,
    }
