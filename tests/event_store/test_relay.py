"""The relay: every event of the global log, in order, on the events exchange, at least once.

On both storage backends with the in-memory bus, and on the real RabbitMQ; on PostgreSQL, two
relays sharing a checkpoint take turns. Each test relays from a checkpoint of its own, set to the
log's head before it appends, so the session's other events stay out of its way.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import pytest

from outrigger.bus.cloudevents import text_headers
from outrigger.bus.rabbitmq_consumer import PERSISTENT
from outrigger.errors import MessagingError
from outrigger.leadership import AdvisoryLockLeadership, SoleLeadership
from outrigger.testing import unique
from services.event_store.adapters.postgres_connection import connect
from services.event_store.domain import EventData
from services.event_store.usecases import Relay
from tests.event_store import api_support
from tests.event_store.api_support import BACKENDS, database_for, running, settings_for
from tests.event_store.conftest import settle
from tests.event_store.relay_support import (
    WAIT_SECONDS,
    Broker,
    FailingBus,
    RabbitMQBroker,
    StallingBus,
    SwallowingStore,
    append_all,
    as_bus,
    checkpoint_at_head,
    mixed_events,
    open_store,
    relay,
    until_checkpoint,
)
from tests.event_store.suite import new_category

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from services.event_store.domain import EventStore, RecordedEvent


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def store(database: str) -> AsyncIterator[EventStore]:
    store = await open_store(database)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    broker = Broker(f"memory://{unique('relay')}")
    try:
        yield broker
    finally:
        await broker.close()


@pytest.fixture
async def rabbitmq(amqp_url: str) -> AsyncIterator[RabbitMQBroker]:
    broker = RabbitMQBroker(amqp_url)
    try:
        yield broker
    finally:
        await broker.close()


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def any_broker(request: pytest.FixtureRequest) -> Broker:
    fixture = "broker" if request.param == "memory" else "rabbitmq"
    found: Broker = request.getfixturevalue(fixture)
    return found


async def test_every_event_goes_out_in_log_order_as_a_cloud_event_routed_by_category_and_type(
    store: EventStore, broker: Broker
) -> None:
    await broker.consume()
    name = await checkpoint_at_head(store)
    orders, invoices = new_category(), new_category()
    logged = await append_all(
        store,
        {
            f"{orders}-7": [EventData("Placed", {"total": 42}), EventData("Paid", {"total": 42})],
            f"{invoices}-7-a": [EventData("Issued", {"number": "A-1"})],
            f"{orders}-8": [EventData("Placed", {"total": 5}, metadata={"by": "tester"})],
        },
    )
    bus = await broker.bus()
    running = relay(store, bus, broker, name, batch_size=2)
    running.start()
    try:
        await broker.inbox.until(logged[-1].global_position or 0)
        await until_checkpoint(store, name, logged[-1].global_position)
    finally:
        await running.stop()

    received = broker.inbox.deliveries
    assert [int(d.event.extensions["sequence"]) for d in received] == [
        e.global_position for e in logged
    ]
    assert [d.routing_key for d in received] == [
        f"{orders}.Placed",
        f"{orders}.Paid",
        f"{invoices}.Issued",
        f"{orders}.Placed",
    ]
    for delivery, event in zip(received, logged, strict=True):
        cloud = delivery.event
        assert delivery.exchange == broker.exchange
        assert (cloud.id, cloud.subject, cloud.type, cloud.data) == (
            str(event.id),
            event.stream_id,
            event.type,
            event.data,
        )
        assert cloud.source == "event-store"
        assert cloud.time == event.created
        assert cloud.extensions["streamversion"] == str(event.version)
    assert await store.get_checkpoint(name) == logged[-1].global_position
    assert running.position == logged[-1].global_position


@pytest.mark.rabbitmq
async def test_on_rabbitmq_events_are_persistent_binary_cloud_events_with_the_event_id(
    store: EventStore, rabbitmq: RabbitMQBroker
) -> None:
    await rabbitmq.consume()
    name = await checkpoint_at_head(store)
    category = new_category()
    logged = await append_all(store, {f"{category}-1": [EventData("Opened", {"a": [1, "b"]})]})
    running = relay(store, await rabbitmq.bus(), rabbitmq, name)
    running.start()
    try:
        await rabbitmq.inbox.until(logged[-1].global_position or 0)
    finally:
        await running.stop()

    (message,) = rabbitmq.messages
    (event,) = logged
    assert message.exchange == rabbitmq.exchange
    assert message.routing_key == f"{category}.Opened"
    assert message.message_id == str(event.id)
    assert message.delivery_mode == PERSISTENT
    assert message.content_type == "application/json"
    assert message.body == b'{"a":[1,"b"]}'
    headers = text_headers(message.headers)
    assert headers["cloudEvents_specversion"] == "1.0"
    assert headers["cloudEvents_subject"] == f"{category}-1"
    assert headers["cloudEvents_sequence"] == str(event.global_position)
    assert headers["cloudEvents_type"] == "Opened"


async def test_the_checkpoint_moves_only_after_the_broker_confirmed_and_a_retry_skips_nothing(
    store: EventStore, broker: Broker
) -> None:
    await broker.consume()
    name = await checkpoint_at_head(store)
    start = await store.get_checkpoint(name)
    logged = await append_all(store, mixed_events(new_category(), 7))
    positions = [e.global_position for e in logged]
    failing = FailingBus(await broker.bus(), failing=2)
    relaying = relay(store, as_bus(failing), broker, name, batch_size=3)
    relaying.position = start

    assert await relaying.publish_batch() == 3
    assert await store.get_checkpoint(name) == start + 3
    with pytest.raises(MessagingError, match="broker unreachable"):
        await relaying.publish_batch()
    assert await store.get_checkpoint(name) == start + 3
    assert relaying.position == start + 3

    assert [await relaying.publish_batch() for _ in range(3)] == [3, 1, 0]
    await broker.inbox.until(positions[-1] or 0)
    assert broker.inbox.positions() == positions
    assert await store.get_checkpoint(name) == positions[-1]


async def test_the_running_relay_retries_a_failed_publish_from_its_checkpoint(
    store: EventStore, broker: Broker
) -> None:
    await broker.consume()
    name = await checkpoint_at_head(store)
    logged = await append_all(store, mixed_events(new_category(), 10))
    failing = FailingBus(await broker.bus(), failing=1)
    running = relay(store, as_bus(failing), broker, name, batch_size=4)
    running.start()
    try:
        await broker.inbox.until(logged[-1].global_position or 0)
    finally:
        await running.stop()
    assert failing.calls > 1
    assert broker.inbox.positions() == [e.global_position for e in logged]


async def test_a_lingering_relay_sends_a_busy_log_in_few_batches(
    store: EventStore, broker: Broker
) -> None:
    await broker.consume()
    name = await checkpoint_at_head(store)
    counting = FailingBus(await broker.bus(), failing=0)  # never fails; counts the batches
    running = relay(store, as_bus(counting), broker, name, linger=0.3)
    running.start()
    try:
        stream = f"{new_category()}-1"
        for n in range(30):
            await store.append(stream, [EventData(type="Counted", data={"n": n})])
            await settle(store)  # the log moves 30 times
        head = await store.head_position()
        await broker.inbox.until(head)
    finally:
        await running.stop()
    assert [d.event.data for d in broker.inbox.deliveries] == [{"n": n} for n in range(30)]
    assert counting.calls <= 5


async def test_stop_ends_the_relay_even_when_a_library_swallowed_the_cancellation(
    store: EventStore, broker: Broker
) -> None:
    swallowing = SwallowingStore(store)
    name = await checkpoint_at_head(store)
    running = Relay(
        cast("EventStore", swallowing),
        await broker.bus(),
        SoleLeadership(name),
        exchange=broker.exchange,
        checkpoint=name,
        idle_wait=30,
    )
    running.start()
    await asyncio.wait_for(swallowing.waiting.wait(), WAIT_SECONDS)
    stopping = asyncio.create_task(running.stop())
    await asyncio.wait({stopping}, timeout=5)  # no cancel: a stuck stop() stays stuck
    try:
        assert swallowing.swallowed
        assert stopping.done(), "stop() still waits for a relay that ignored its cancellation"
    finally:
        stopping.cancel()


async def test_a_relay_stopped_mid_stream_is_resumed_from_its_checkpoint_with_nothing_lost(
    store: EventStore, any_broker: Broker
) -> None:
    broker = any_broker
    await broker.consume()
    name = await checkpoint_at_head(store)
    start = await store.get_checkpoint(name)
    count = 3000
    logged = await append_all(store, mixed_events(new_category(), count))
    assert [e.global_position for e in logged] == list(range(start + 1, start + count + 1))

    first = StallingBus(await broker.bus("relay-a"), batches=15)
    stopped = relay(store, as_bus(first), broker, name, batch_size=100)
    stopped.start()
    async with asyncio.timeout(WAIT_SECONDS):
        await first.stalled.wait()
    await stopped.stop()
    checkpoint = await store.get_checkpoint(name)
    assert checkpoint == start + 1500
    await broker.inbox.until(start + 1600)  # the batch published but never confirmed

    resumed = relay(store, await broker.bus("relay-b"), broker, name, batch_size=100)
    resumed.start()
    try:
        await broker.inbox.until(start + count)
        await until_checkpoint(store, name, start + count)
    finally:
        await resumed.stop()

    inbox = broker.inbox
    assert inbox.positions("relay-a") == list(range(start + 1, start + 1601))
    assert inbox.positions("relay-b") == list(range(checkpoint + 1, start + count + 1))
    assert set(inbox.positions()) == set(range(start + 1, start + count + 1))


@pytest.mark.postgres
async def test_on_postgresql_one_relay_per_checkpoint_publishes_and_the_other_takes_over(
    event_store_postgres_url: str, broker: Broker
) -> None:
    url = event_store_postgres_url
    await broker.consume()
    store = await open_store(url)
    try:
        name = await checkpoint_at_head(store)
        relays = {
            source: relay(
                store,
                await broker.bus(source),
                broker,
                name,
                leadership=AdvisoryLockLeadership(
                    lambda: connect(url, "outrigger-test-relay"), name, check_interval=0.05
                ),
            )
            for source in ("relay-a", "relay-b")
        }
        for each in relays.values():
            each.start()
        try:
            before = await append_all(store, mixed_events(new_category(), 20))
            await broker.inbox.until(before[-1].global_position or 0)
            (leader,) = {d.event.source for d in broker.inbox.deliveries}
            (follower,) = set(relays) - {leader}
            assert broker.inbox.positions(leader) == [e.global_position for e in before]
            await until_checkpoint(store, name, before[-1].global_position)

            await relays[leader].stop()
            after = await append_all(store, mixed_events(new_category(), 20))
            await broker.inbox.until(after[-1].global_position or 0)
        finally:
            for each in relays.values():
                await each.stop()
    finally:
        await store.close()
    assert broker.inbox.positions(leader) == [e.global_position for e in before]
    assert broker.inbox.positions(follower) == [e.global_position for e in after]


@pytest.mark.postgres
async def test_a_relay_only_process_serves_no_api_and_relays_what_the_api_processes_append(
    event_store_postgres_url: str, broker: Broker, tmp_path: Path
) -> None:
    await broker.consume()
    store = await open_store(event_store_postgres_url)
    try:
        checkpoint = await checkpoint_at_head(store)  # earlier tests' events are not ours
    finally:
        await store.close()
    common = {
        "amqp_url": broker.url,
        "event_store_relay_exchange": broker.exchange,
        "event_store_relay_checkpoint": checkpoint,
        "event_store_relay_idle_wait_seconds": 0.05,
    }
    api_only = settings_for(event_store_postgres_url, tmp_path, **common)
    relay_only = settings_for(
        event_store_postgres_url,
        tmp_path,
        **common,
        event_store_api_enabled=False,
        event_store_relay_enabled=True,
    )
    async with running(api_only) as api, running(relay_only) as relay:
        category = new_category()
        stream = f"{category}-1"
        appended = await api_support.append(api, stream, api_support.event(0), api_support.event(1))
        assert appended.status_code == 201
        refused = await relay.http.post(f"/v1/streams/{stream}/events", json={"events": []})
        assert refused.status_code == 404
        assert (await relay.http.get("/readyz")).status_code == 200
        logged = await store_log(api, category)
        await broker.inbox.until(logged[-1].global_position or 0)
    relayed = [d.event.id for d in broker.inbox.deliveries if d.event.subject == stream]
    assert relayed == [str(e.id) for e in logged]


async def store_log(api: api_support.Api, category: str) -> list[RecordedEvent]:
    """The category's events in the log of `api`'s store, once all of them are sequenced."""
    store = api.app.state.event_store.store
    await settle(store)
    return list(await store.read_log(0, 10_000, category=category))
