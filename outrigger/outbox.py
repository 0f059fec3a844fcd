"""Transactional outbox: write events in the same transaction as the data, publish them after.

`Outbox.add()` inserts into the service's own outbox table inside the caller's unit of work, so an
event exists if and only if the change that caused it was committed. `OutboxRelay` publishes
unsent rows in id order with publisher confirms and marks them sent: at least once, in order
within a transaction (rows of concurrent transactions interleave by id, as they were written).
Relays on several replicas may run: `FOR UPDATE` makes them take turns, never reorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import Counter
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)

from outrigger.bus import CloudEvent
from outrigger.errors import InfrastructureError
from outrigger.tasks import stop_task

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncConnection

    from outrigger.bus import MessageBus
    from outrigger.db import Database

RELAYED = Counter("outrigger_outbox_relayed_total", "Outbox rows published.", ["table"])
FAILURES = Counter("outrigger_outbox_relay_failures_total", "Relay batches that failed.", ["table"])
log = logging.getLogger("outrigger.outbox")


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox table, in the schema of `metadata`; a service's migration creates it."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("exchange", String(255), nullable=False),
        Column("routing_key", String(255), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(255), nullable=False),
        Column("source", String(255), nullable=False),
        Column("subject", String(255)),
        Column("time", DateTime(timezone=True), nullable=False),
        Column("content_type", String(127), nullable=False),
        Column("extensions", JSON, nullable=False),
        Column("data", LargeBinary, nullable=False),
        Column("sent_at", DateTime(timezone=True)),
        Index(
            f"ix_{name}_unsent",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )


class Outbox:
    """Adds events to an outbox table inside the caller's transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def add(
        self, connection: AsyncConnection, exchange: str, routing_key: str, event: CloudEvent
    ) -> None:
        await self.add_many(connection, exchange, [(routing_key, event)])

    async def add_many(
        self,
        connection: AsyncConnection,
        exchange: str,
        events: Sequence[tuple[str, CloudEvent]],
    ) -> None:
        if events:
            rows = [_row(exchange, key, event) for key, event in events]
            await connection.execute(insert(self.table), rows)


def _row(exchange: str, routing_key: str, event: CloudEvent) -> dict[str, Any]:
    data = event.data if isinstance(event.data, bytes) else orjson.dumps(event.data)
    return {
        "exchange": exchange,
        "routing_key": routing_key,
        "event_id": event.id,
        "event_type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time,
        "content_type": event.datacontenttype,
        "extensions": dict(event.extensions),
        "data": data,
    }


def _event(row: Any) -> CloudEvent:
    return CloudEvent(
        id=row.event_id,
        source=row.source,
        type=row.event_type,
        data=bytes(row.data),
        subject=row.subject,
        time=row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC),
        datacontenttype=row.content_type,
        extensions=dict(row.extensions),
    )


class OutboxRelay:
    """Publishes unsent outbox rows, oldest first; `start()` in the lifespan, `stop()` on exit."""

    def __init__(
        self,
        database: Database,
        table: Table,
        bus: MessageBus,
        *,
        batch_size: int = 256,
        interval_seconds: float = 0.5,
        retention: timedelta = timedelta(hours=24),
    ) -> None:
        self.database = database
        self.table = table
        self.bus = bus
        self.batch_size = batch_size
        self.interval = interval_seconds
        self.retention = retention
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Relays now instead of at the next poll (call after committing new rows)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publishes one batch and marks it sent in the same transaction; returns its size."""
        table = self.table
        async with self.database.unit_of_work() as connection:
            query = (
                select(table)
                .where(table.c.sent_at.is_(None))
                .order_by(table.c.id)
                .limit(self.batch_size)
                .with_for_update()
            )
            rows = (await connection.execute(query)).all()
            if not rows:
                return 0
            by_exchange: dict[str, list[tuple[str, CloudEvent]]] = {}
            for row in rows:
                by_exchange.setdefault(row.exchange, []).append((row.routing_key, _event(row)))
            for exchange, events in by_exchange.items():
                await self.bus.publish_many(exchange, events)
            ids = [row.id for row in rows]
            await connection.execute(
                update(table).where(table.c.id.in_(ids)).values(sent_at=datetime.now(UTC))
            )
        RELAYED.labels(table.fullname).inc(len(rows))
        return len(rows)

    async def purge_sent(self) -> None:
        cutoff = datetime.now(UTC) - self.retention
        async with self.database.unit_of_work() as connection:
            await connection.execute(delete(self.table).where(self.table.c.sent_at < cutoff))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.table.fullname}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        delay = self.interval
        polls = 0
        while True:
            try:
                while await self.relay_once() == self.batch_size:
                    pass
                polls += 1
                if polls % 1000 == 0:
                    await self.purge_sent()
                delay = self.interval
            except InfrastructureError as exc:
                FAILURES.labels(self.table.fullname).inc()
                log.warning("outbox relay failed, retrying in %.1fs: %s", delay, exc.detail)
                delay = min(delay * 2, 30.0)
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that lands as
            # the wait completes, and stop() would then hang until the next poll.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
