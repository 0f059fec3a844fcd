"""The transactional outbox on PostgreSQL and SQLite, relayed through the in-memory bus."""

from __future__ import annotations

import abc
import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import MetaData, select, text

from outrigger.bus import Ack, CloudEvent, Delivery, connect_bus
from outrigger.db import Database, build_engine
from outrigger.errors import MessagingError
from outrigger.outbox import Outbox, OutboxRelay, outbox_table

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from sqlalchemy import Table

    from outrigger.bus import MessageBus

SCHEMA = "kit_outbox"


class Harness:
    def __init__(self, database: Database, table: Table, bus: MessageBus, exchange: str) -> None:
        self.database, self.table, self.bus, self.exchange = database, table, bus, exchange
        self.outbox = Outbox(table)
        self.received: list[Delivery] = []

    async def consume(self) -> None:
        async def handler(delivery: Delivery) -> Ack:
            self.received.append(delivery)
            return Ack()

        await self.bus.subscribe(f"q-{self.exchange}", [(self.exchange, "#")], handler)

    async def write(self, *names: str) -> list[CloudEvent]:
        events = [CloudEvent.new(source="kit-test", type=name, data={"n": name}) for name in names]
        async with self.database.unit_of_work() as connection:
            await self.outbox.add_many(connection, self.exchange, [(e.type, e) for e in events])
        return events

    async def unsent(self) -> int:
        async with self.database.unit_of_work() as connection:
            query = select(self.table.c.id).where(self.table.c.sent_at.is_(None))
            return len((await connection.execute(query)).all())

    async def until_received(self, count: int) -> None:
        for _ in range(200):
            if len(self.received) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"received {len(self.received)} of {count}")


class OutboxContract(abc.ABC):
    @abc.abstractmethod
    def make_url(self) -> str:
        """Each adapter's subclass builds its own."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        database = Database(build_engine(self.make_url(), schemas=[SCHEMA]))
        table = outbox_table(MetaData(schema=SCHEMA), name=f"outbox_{uuid.uuid4().hex[:8]}")
        async with database.unit_of_work() as connection:
            if database.dialect == "postgresql":
                await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            await connection.run_sync(table.metadata.create_all)
        bus = connect_bus(f"memory://{uuid.uuid4().hex}", source="kit-test")
        await bus.start()
        exchange = f"ex-{uuid.uuid4().hex[:8]}"
        await bus.declare_exchange(exchange)
        yield Harness(database, table, bus, exchange)
        await bus.close()
        async with database.unit_of_work() as connection:
            await connection.run_sync(table.metadata.drop_all)
        await database.dispose()

    async def test_committed_events_are_relayed_in_order_and_marked_sent(
        self, harness: Harness
    ) -> None:
        await harness.consume()
        written = await harness.write("a", "b", "c")
        relay = OutboxRelay(harness.database, harness.table, harness.bus)
        assert await relay.relay_once() == 3
        await harness.until_received(3)
        assert [d.event.id for d in harness.received] == [e.id for e in written]
        assert [d.routing_key for d in harness.received] == ["a", "b", "c"]
        assert harness.received[0].event.data == {"n": "a"}
        assert await harness.unsent() == 0
        assert await relay.relay_once() == 0

    async def test_a_rolled_back_transaction_leaves_no_event(self, harness: Harness) -> None:
        event = CloudEvent.new(source="kit-test", type="never", data={})
        with pytest.raises(RuntimeError):
            async with harness.database.unit_of_work() as connection:
                await harness.outbox.add(connection, harness.exchange, "never", event)
                raise RuntimeError("the business change failed")
        assert await harness.unsent() == 0

    async def test_a_failed_publish_keeps_the_rows_for_the_next_try(self, harness: Harness) -> None:
        await harness.consume()
        await harness.write("x", "y")
        broken = _FailingBus(harness.bus)
        relay = OutboxRelay(harness.database, harness.table, broken)
        with pytest.raises(MessagingError):
            await relay.relay_once()
        assert await harness.unsent() == 2
        assert await relay.relay_once() == 2
        await harness.until_received(2)
        assert [d.routing_key for d in harness.received] == ["x", "y"]

    async def test_the_background_relay_publishes_when_woken(self, harness: Harness) -> None:
        await harness.consume()
        relay = OutboxRelay(harness.database, harness.table, harness.bus, interval_seconds=30)
        relay.start()
        try:
            await harness.write("woken")
            relay.wake()
            await harness.until_received(1)
        finally:
            await relay.stop()
        assert harness.received[0].routing_key == "woken"


class _FailingBus:
    """A bus whose first publish fails as a broker outage would."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.failed = False

    async def publish_many(self, exchange: str, messages: Sequence[tuple[str, CloudEvent]]) -> None:
        if not self.failed:
            self.failed = True
            raise MessagingError("broker unreachable")
        await self.bus.publish_many(exchange, messages)


@pytest.mark.postgres
class TestPostgres(OutboxContract):
    @pytest.fixture(autouse=True)
    def _url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_url(self) -> str:
        return self.url


class TestSqlite(OutboxContract):
    @pytest.fixture(autouse=True)
    def _path(self, tmp_path: Path) -> None:
        self.path = tmp_path / "outbox.db"

    def make_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.path}"
