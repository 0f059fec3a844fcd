"""Ingest from RabbitMQ: a message on the notifications exchange lands in its channel once (its
CloudEvent id is the key, so a redelivery or a publisher's retry lands once), an event relayed by
the event store lands in its stream's and its category's channels with its global position, and
a message that can never land is dead-lettered with the reason. Each test has a queue and
exchanges of its own on the real broker, removed afterwards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aio_pika
import pytest

from outrigger.bus import DEATH_REASON_HEADER, Ack, CloudEvent, Delivery, Retry, connect_bus
from outrigger.errors import CacheError
from outrigger.testing import unique
from outrigger.testing.broker import remove
from services.notifications.consumers import MessageIngest
from tests.notifications.api_support import hub_settings, served

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from outrigger.bus import MessageBus
    from tests.notifications.api_support import Hub

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[dict[str, str]]:
    names = {
        "queue": unique("notifications-ingest"),
        "exchange": unique("notifications-exchange"),
        "events": unique("events-exchange"),
    }
    yield names
    await remove(amqp_url, [names["queue"]], [names["exchange"], names["events"]])


@pytest.fixture
async def hub(amqp_url: str, names: dict[str, str]) -> AsyncIterator[Hub]:
    settings = hub_settings(
        amqp_url=amqp_url,
        notifications_ingest_queue=names["queue"],
        notifications_exchange=names["exchange"],
        notifications_events_exchange=names["events"],
        notifications_ingest_events=True,
    )
    async with served(settings) as hub:
        yield hub


@pytest.fixture
async def producer(amqp_url: str) -> AsyncIterator[MessageBus]:
    bus = connect_bus(amqp_url, source="tests.producer")
    await bus.start()
    yield bus
    await bus.close()


async def _kept(hub: Hub, channel: str, count: int) -> list[Any]:
    """The first `count` messages history keeps of `channel`, waiting for them to land."""
    async with hub.subscribe(channel, since="earliest") as stream:
        return [await stream.message() for _ in range(count)]


async def test_a_message_lands_in_its_channel_once(
    hub: Hub, producer: MessageBus, names: dict[str, str]
) -> None:
    event = CloudEvent.new(source="tests", type="order.shipped", data={"order": 7})
    await producer.publish(names["exchange"], "orders.eu", event)
    await producer.publish(names["exchange"], "orders.eu", event)  # a publisher's retry
    after = CloudEvent.new(source="tests", type="order.paid", data={"order": 8})
    await producer.publish(names["exchange"], "orders.eu", after)

    frames = await _kept(hub, "orders.eu", 2)
    assert [(frame.event, frame.json()) for frame in frames] == [
        ("order.shipped", {"order": 7}),
        ("order.paid", {"order": 8}),
    ]
    info = (await hub.http.get("/v1/channels/orders.eu")).json()
    assert info["length"] == 2


async def test_an_event_lands_in_its_stream_and_category_channels(
    hub: Hub, producer: MessageBus, names: dict[str, str]
) -> None:
    event = CloudEvent(
        id="event-1",
        source="event-store",
        type="OrderPlaced",
        subject="order-7",
        data={"total": 12},
        time=datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
        extensions={"sequence": "41", "streamversion": "3"},
    )
    await producer.publish(names["events"], "order.OrderPlaced", event)

    for channel in ("streams.order-7", "categories.order"):
        (frame,) = await _kept(hub, channel, 1)
        assert frame.event == "OrderPlaced"
        assert frame.json() == {
            "stream_id": "order-7",
            "version": 3,
            "position": 41,
            "type": "OrderPlaced",
            "data": {"total": 12},
            "time": "2026-12-06T12:00:00Z",
        }


@pytest.mark.parametrize(
    ("routing_key", "event_type", "data", "reason"),
    [
        ("orders..eu", "ok", {}, "channel"),
        ("orders.eu", "has space", {}, "event name"),
        ("orders.eu", "ok", {"blob": "x" * 70_000}, "bytes"),
    ],
)
async def test_a_message_that_can_never_land_is_dead_lettered_with_the_reason(
    hub: Hub,
    producer: MessageBus,
    names: dict[str, str],
    amqp_url: str,
    routing_key: str,
    event_type: str,
    data: Any,
    reason: str,
) -> None:
    event = CloudEvent.new(source="tests", type=event_type, data=data)
    await producer.publish(names["exchange"], routing_key, event)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{names['queue']}.dlq")
        for _ in range(100):
            message = await queue.get(fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        assert message is not None, "nothing was dead-lettered"
        await message.ack()
    assert reason in str(message.headers[DEATH_REASON_HEADER])


class _Unavailable:
    async def publish(self, *args: Any, **kwargs: Any) -> None:
        raise CacheError("redis unreachable")


def _delivery(exchange: str) -> Delivery:
    event = CloudEvent.new(source="tests", type="tick", data={"n": 1})
    return Delivery(event, "q", exchange, "ticks", 1, {})


async def test_while_history_is_down_a_message_is_retried_not_acknowledged() -> None:
    ingest = MessageIngest(_Unavailable())  # type: ignore[arg-type]
    outcome = await ingest(_delivery("outrigger.notifications"))
    assert isinstance(outcome, Retry)
    assert "history unavailable" in outcome.reason


async def test_an_event_without_its_stream_is_not_a_notification() -> None:
    ingest = MessageIngest(_Unavailable())  # type: ignore[arg-type]
    delivery = _delivery("outrigger.events")
    outcome = await ingest(delivery)
    assert not isinstance(outcome, Ack | Retry)
    assert "subject" in outcome.reason
