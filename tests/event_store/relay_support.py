"""What the relay tests share: stores, buses with an inbox on the exchange, and fake buses and
stores that fail the way brokers and drivers do.

`Broker` is the in-memory bus; `RabbitMQBroker` reads a raw exclusive queue on the real broker,
so a test sees the messages as they are on the wire. Both decode what arrives into the kit's
`Delivery`, so the same assertions hold on either.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, cast

import aio_pika

from outrigger.bus import Ack, Delivery, MessageBus, connect_bus
from outrigger.bus.cloudevents import text_headers
from outrigger.bus.dispatch import delivery_of
from outrigger.bus.rabbitmq import RabbitMQBus
from outrigger.errors import MessagingError
from outrigger.leadership import SoleLeadership
from outrigger.testing import unique
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.adapters.sqlite import SqliteEventStore
from services.event_store.domain import EventData
from services.event_store.usecases import Relay
from tests.event_store.conftest import settle

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aio_pika.abc import AbstractIncomingMessage

    from outrigger.bus import CloudEvent
    from services.event_store.domain import EventStore, RecordedEvent

WAIT_SECONDS = 20.0


async def open_store(url: str) -> EventStore:
    if url.startswith("postgresql"):
        return await PostgresEventStore.open(url, max_size=4)
    return SqliteEventStore.open(url, poll_interval=0.05)


class Inbox:
    """What arrived on a queue bound to the exchange with `#`, in arrival order."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.arrived = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> Ack:
        self.add(delivery)
        return Ack()

    def add(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.arrived.set()

    def positions(self, source: str | None = None) -> list[int]:
        return [
            int(d.event.extensions["sequence"])
            for d in self.deliveries
            if source is None or d.event.source == source
        ]

    async def until(self, position: int) -> None:
        """Waits until the event at `position` arrived."""
        async with asyncio.timeout(WAIT_SECONDS):
            while position not in self.positions():
                self.arrived.clear()
                await self.arrived.wait()


class Broker:
    """The bus the relays publish to, and an inbox reading everything on `exchange`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.exchange = f"test.relay.{uuid.uuid4().hex[:12]}"
        self.inbox = Inbox()
        self.buses: list[MessageBus] = []

    async def bus(self, source: str = "event-store") -> MessageBus:
        bus = connect_bus(self.url, source=source)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def consume(self) -> None:
        """One consumer, one at a time (prefetch 1), every copy (no de-duplication)."""
        consumer = await self.bus("tests")
        queue = unique("test.relay.inbox.")
        bindings = [(self.exchange, "#")]
        await consumer.subscribe(queue, bindings, self.inbox, prefetch=1, dedupe=False)

    async def close(self) -> None:
        for bus in reversed(self.buses):
            await bus.close()


class RabbitMQBroker(Broker):
    """On the real broker: the inbox reads a raw exclusive queue, so the test sees the wire."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.messages: list[AbstractIncomingMessage] = []
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def bus(self, source: str = "event-store") -> MessageBus:
        bus = RabbitMQBus(self.url, source=source, timeout_seconds=5.0)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def consume(self) -> None:
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1)
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "#")
        await queue.consume(self._received, no_ack=True)

    async def _received(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)
        headers = text_headers(message.headers)
        self.inbox.add(
            delivery_of(
                "raw",
                message.body,
                headers,
                message.content_type,
                message.message_id,
                message.exchange or "",
                message.routing_key or "",
            )
        )

    async def close(self) -> None:
        await super().close()
        if self._connection is not None:
            channel = await self._connection.channel()
            await channel.exchange_delete(self.exchange)
            await self._connection.close()


async def checkpoint_at_head(store: EventStore) -> str:
    """A new checkpoint name, set to the log's head: its relay publishes what comes next."""
    name = unique("relay-test-")
    await settle(store)  # an earlier test's events, still unsequenced, would come after it
    await store.set_checkpoint(name, await store.head_position())
    return name


async def append_all(store: EventStore, events: dict[str, list[EventData]]) -> list[RecordedEvent]:
    """Appends each stream's events, then returns them as the log holds them, in log order."""
    head = await store.head_position()
    for stream_id, batch in events.items():
        for start in range(0, len(batch), 1000):
            await store.append(stream_id, batch[start : start + 1000])
    await settle(store)
    return await store.read_log(head, 10_000)


async def until_checkpoint(store: EventStore, name: str, position: int | None) -> None:
    """Waits until the relay stored `position`: stopping it then republishes nothing."""
    for _ in range(int(WAIT_SECONDS / 0.005)):
        if await store.get_checkpoint(name) == position:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"checkpoint {name} never reached {position}")


def relay(store: EventStore, bus: MessageBus, broker: Broker, name: str, **options: Any) -> Relay:
    options.setdefault("idle_wait", 0.05)
    options.setdefault("election_interval", 0.01)
    leadership = options.pop("leadership", SoleLeadership(name))
    return Relay(store, bus, leadership, exchange=broker.exchange, checkpoint=name, **options)


class FailingBus:
    """A bus whose publish number `failing` (from 1) fails as a broker outage would."""

    def __init__(self, bus: MessageBus, failing: int = 1) -> None:
        self.bus = bus
        self.source = bus.source
        self.calls = 0
        self.failing = failing

    async def publish_many(self, exchange: str, messages: Sequence[tuple[str, CloudEvent]]) -> None:
        self.calls += 1
        if self.calls == self.failing:
            raise MessagingError("broker unreachable")
        await self.bus.publish_many(exchange, messages)


class StallingBus:
    """Confirms `batches` publishes, then sends one more whose confirm never comes: the relay is
    stopped while it waits, as a process killed between publishing and storing its checkpoint."""

    def __init__(self, bus: MessageBus, batches: int) -> None:
        self.bus = bus
        self.source = bus.source
        self.left = batches
        self.stalled = asyncio.Event()

    async def publish_many(self, exchange: str, messages: Sequence[tuple[str, CloudEvent]]) -> None:
        await self.bus.publish_many(exchange, messages)
        if self.left == 0:
            self.stalled.set()
            await asyncio.Event().wait()
        self.left -= 1


class SwallowingStore:
    """A store whose first `wait_for_log` swallows its cancellation, as `asyncio.wait_for`
    inside psycopg_pool does on Python 3.11 when a connection is handed over at that moment."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.waiting = asyncio.Event()
        self.swallowed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def wait_for_log(self, after_position: int, *, max_wait: float) -> int:
        if self.swallowed:
            return await self.store.wait_for_log(after_position, max_wait=max_wait)
        self.waiting.set()
        try:
            await asyncio.sleep(max_wait)
        except asyncio.CancelledError:
            self.swallowed = True
        return await self.store.head_position()


def as_bus(fake: object) -> MessageBus:
    return cast("MessageBus", fake)


def mixed_events(category: str, count: int) -> dict[str, list[EventData]]:
    """`count` events over three streams of `category`, of two types."""
    streams: dict[str, list[EventData]] = {f"{category}-{n}": [] for n in range(3)}
    names = list(streams)
    for n in range(count):
        kind = "Placed" if n % 2 == 0 else "Shipped"
        streams[names[n % 3]].append(EventData(kind, {"n": n}))
    return streams
