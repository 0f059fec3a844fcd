"""The MessageBus contract, written once; each adapter's test module subclasses `BusContract`.

A subclass provides the `bus_url` fixture, the `make_bus()` hook and, when its broker outlives
the test, `forget()` to delete what the test declared.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from outrigger.bus import (
    ATTEMPT_HEADER,
    DEATH_REASON_HEADER,
    Ack,
    CloudEvent,
    Delivery,
    Drop,
    MessageBus,
    Outcome,
    Retry,
)
from outrigger.errors import MessagingError

WAIT_SECONDS = 10.0


class Names:
    """Exchange and queue names unique to one test, remembered for clean-up."""

    def __init__(self) -> None:
        self.suffix = uuid.uuid4().hex[:12]
        self.exchanges: list[str] = []
        self.queues: list[str] = []

    def exchange(self, label: str = "events") -> str:
        self.exchanges.append(name := f"test.bus.{label}.{self.suffix}")
        return name

    def queue(self, label: str = "work") -> str:
        self.queues.append(name := f"test.bus.{label}.{self.suffix}")
        return name


class Inbox:
    """A handler that records its deliveries and answers `outcome` (or what `answer` returns)."""

    def __init__(self, outcome: Outcome | None = None, *, pause: float = 0.0) -> None:
        self.deliveries: list[Delivery] = []
        self.times: list[float] = []
        self.outcome = outcome or Ack()
        self.pause = pause

    async def __call__(self, delivery: Delivery) -> Outcome:
        self.deliveries.append(delivery)
        self.times.append(time.monotonic())
        if self.pause:
            await asyncio.sleep(self.pause)
        return self.answer(delivery)

    def answer(self, delivery: Delivery) -> Outcome:
        return self.outcome

    @property
    def ids(self) -> list[str]:
        return [delivery.event.id for delivery in self.deliveries]

    async def wait(self, count: int, within: float = WAIT_SECONDS) -> list[Delivery]:
        deadline = time.monotonic() + within
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(self.deliveries)} deliveries after {within}s, expected {count}")
            await asyncio.sleep(0.01)
        return self.deliveries


def event(type: str = "test.happened", data: Any = None, **fields: Any) -> CloudEvent:
    return CloudEvent.new(source="tests/bus", type=type, data=data or {"n": 1}, **fields)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def eventually(check: Any, within: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within}s")
        await asyncio.sleep(0.01)


class BusContract:
    @pytest.fixture
    def bus_url(self) -> str:
        raise NotImplementedError

    def make_bus(self, url: str, **options: Any) -> MessageBus:
        raise NotImplementedError

    async def forget(self, url: str, names: Names) -> None:
        """Deletes the exchanges and queues the test declared, where they outlive the bus."""

    @pytest.fixture
    def names(self) -> Names:
        return Names()

    @pytest.fixture
    async def new_bus(self, bus_url: str, names: Names) -> Any:
        buses: list[MessageBus] = []

        async def new(**options: Any) -> MessageBus:
            bus = self.make_bus(bus_url, **options)
            await bus.start()
            buses.append(bus)
            return bus

        yield new
        for bus in reversed(buses):
            await bus.close()
        await self.forget(bus_url, names)

    @pytest.fixture
    async def bus(self, new_bus: Any) -> MessageBus:
        bus: MessageBus = await new_bus()
        return bus

    async def test_a_published_event_is_consumed_then_acked(
        self, bus: MessageBus, new_bus: Any, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        subscription = await bus.subscribe(queue, [(exchange, "orders.created")], inbox)
        sent = event("orders.created", {"order": 7})
        await bus.publish(exchange, "orders.created", sent)
        [delivery] = await inbox.wait(1)
        assert delivery.event == sent
        assert (delivery.queue, delivery.exchange, delivery.routing_key) == (
            queue,
            exchange,
            "orders.created",
        )
        assert delivery.attempt == 1
        await subscription.cancel()

        later = Inbox()
        await (await new_bus()).subscribe(queue, [], later, dedupe=False)
        await bus.publish(exchange, "orders.created", sentinel := event())
        await later.wait(1)
        await asyncio.sleep(0.1)
        assert later.ids == [sentinel.id], "an acked message was delivered again"

    async def test_topic_patterns_route_by_words(self, bus: MessageBus, names: Names) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "a.*"), (exchange, "b.#")], inbox)
        keys = ["a.one", "a.one.two", "b", "b.x.y", "c.one", "a"]
        for key in keys:
            await bus.publish(exchange, key, event(subject=key))
        await bus.publish(exchange, "a.end", event(subject="a.end"))
        await inbox.wait(4)
        await asyncio.sleep(0.1)
        assert sorted(d.routing_key for d in inbox.deliveries) == ["a.end", "a.one", "b", "b.x.y"]

    async def test_cloudevent_attributes_and_data_round_trip(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        as_json = CloudEvent(
            id="evt-1",
            source="/services/cache",
            type="dev.outrigger.cache.put",
            data={"key": "k€y", "tags": [1, 2.5, None, True]},
            subject="tenant/7",
            time=datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=UTC),
            extensions={"tenant": "acme", "partitionkey": "p-1"},
        )
        as_bytes = event(data=b"\x00\x01binary", datacontenttype="application/octet-stream")
        await bus.publish_many(exchange, [("k.json", as_json), ("k.bytes", as_bytes)])
        await inbox.wait(2)
        received = {d.event.id: d for d in inbox.deliveries}
        assert received["evt-1"].event == as_json
        assert received[as_bytes.id].event == as_bytes
        headers = received["evt-1"].headers
        assert headers["cloudEvents_specversion"] == "1.0"
        assert headers["cloudEvents_type"] == "dev.outrigger.cache.put"
        assert headers["cloudEvents_tenant"] == "acme"

    async def test_a_failing_handler_is_retried_with_growing_delay_then_dead_lettered(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()

        async def failing(delivery: Delivery) -> Outcome:
            attempts.append(delivery)
            times.append(time.monotonic())
            raise RuntimeError(f"boom on attempt {delivery.attempt}")

        attempts: list[Delivery] = []
        times: list[float] = []
        dead = Inbox()
        await bus.subscribe(
            queue, [(exchange, "jobs.#")], failing, max_attempts=3, retry_delay_seconds=0.2
        )
        await bus.subscribe(f"{queue}.dlq", [], dead)
        await bus.publish(exchange, "jobs.run", sent := event())
        [dead_letter] = await dead.wait(1)
        assert [d.attempt for d in attempts] == [1, 2, 3]
        assert {d.routing_key for d in attempts} == {"jobs.run"}
        first_gap, second_gap = times[1] - times[0], times[2] - times[1]
        assert first_gap >= 0.18
        assert second_gap >= 0.36
        assert second_gap > first_gap
        assert dead_letter.event == sent
        assert dead_letter.headers[DEATH_REASON_HEADER] == "RuntimeError: boom on attempt 3"
        assert int(dead_letter.headers[ATTEMPT_HEADER]) == 3
        assert (dead_letter.exchange, dead_letter.routing_key) == (exchange, "jobs.run")
        assert metric("outrigger_bus_dead_lettered_total", queue=queue) == 1

    async def test_a_retry_answer_delivers_again_until_acked(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        inbox.answer = lambda d: Retry("not yet") if d.attempt < 2 else Ack()  # type: ignore[method-assign]
        await bus.subscribe(queue, [(exchange, "#")], inbox, retry_delay_seconds=0.05)
        await bus.publish(exchange, "k", event())
        await inbox.wait(2)
        assert [d.attempt for d in inbox.deliveries] == [1, 2]
        assert inbox.deliveries[1].exchange == exchange
        assert metric("outrigger_bus_consumed_total", queue=queue, outcome="retry") == 1
        assert metric("outrigger_bus_consumed_total", queue=queue, outcome="ack") == 1

    async def test_drop_dead_letters_at_once_with_its_reason(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox, dead = Inbox(Drop("schema v1 is gone")), Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox, retry_delay_seconds=0.05)
        await bus.subscribe(f"{queue}.dlq", [], dead)
        await bus.publish(exchange, "k", sent := event())
        [dead_letter] = await dead.wait(1)
        assert len(inbox.deliveries) == 1
        assert dead_letter.event.id == sent.id
        assert dead_letter.headers[DEATH_REASON_HEADER] == "schema v1 is gone"
        assert int(dead_letter.headers[ATTEMPT_HEADER]) == 1

    async def test_an_undecodable_message_is_dead_lettered_without_the_handler(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        await bus.publish(exchange, "k", event(data=b"{not json"))
        await eventually(lambda: metric("outrigger_bus_dead_lettered_total", queue=queue) == 1)
        assert inbox.deliveries == []

    @pytest.mark.parametrize("prefetch", [1, 20])
    async def test_a_duplicate_message_id_is_handled_once(
        self, bus: MessageBus, names: Names, prefetch: int
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox(pause=0.05)
        await bus.subscribe(queue, [(exchange, "#")], inbox, prefetch=prefetch)
        duplicated = event()
        await bus.publish(exchange, "k", duplicated)
        await bus.publish(exchange, "k", duplicated)
        await bus.publish(exchange, "k", other := event())
        await inbox.wait(2)
        await eventually(lambda: metric("outrigger_bus_duplicates_total", queue=queue) == 1)
        assert sorted(inbox.ids) == sorted([duplicated.id, other.id])

    async def test_the_trace_continues_from_producer_to_consumer(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        seen: list[trace.SpanContext] = []

        async def handler(delivery: Delivery) -> Outcome:
            seen.append(trace.get_current_span().get_span_context())
            inbox.deliveries.append(delivery)
            return Ack()

        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], handler)
        tracer = TracerProvider(shutdown_on_exit=False).get_tracer("tests")
        with tracer.start_as_current_span("request") as span:
            await bus.publish(exchange, "k", event())
        [delivery] = await inbox.wait(1)
        trace_id = span.get_span_context().trace_id
        assert seen[0].trace_id == trace_id
        assert delivery.headers["traceparent"].startswith(f"00-{trace_id:032x}-")

    async def test_competing_consumers_each_get_distinct_messages(
        self, new_bus: Any, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        first, second = Inbox(pause=0.01), Inbox(pause=0.01)
        await (await new_bus()).subscribe(queue, [(exchange, "#")], first, prefetch=1)
        await (await new_bus()).subscribe(queue, [(exchange, "#")], second, prefetch=1)
        sent = [event() for _ in range(40)]
        await (await new_bus()).publish_many(exchange, [("k", e) for e in sent])
        await eventually(lambda: len(first.ids) + len(second.ids) >= 40)
        assert first.ids
        assert second.ids
        assert not set(first.ids) & set(second.ids)
        assert set(first.ids) | set(second.ids) == {e.id for e in sent}

    async def test_publish_many_returns_once_all_are_confirmed(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        before = metric("outrigger_bus_published_total", exchange=exchange)
        sent = [event(data={"i": i}) for i in range(500)]
        await bus.publish_many(exchange, [(f"k.{i % 7}", e) for i, e in enumerate(sent)])
        assert metric("outrigger_bus_published_total", exchange=exchange) == before + 500
        await inbox.wait(500)
        assert sorted(inbox.ids) == sorted(e.id for e in sent)
        await bus.publish_many(exchange, [])

    async def test_a_cancelled_subscription_leaves_messages_queued(
        self, bus: MessageBus, new_bus: Any, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        subscription = await bus.subscribe(queue, [(exchange, "#")], Inbox())
        await subscription.cancel()
        await bus.publish(exchange, "k", sent := event())
        inbox = Inbox()
        await (await new_bus()).subscribe(queue, [], inbox)
        [delivery] = await inbox.wait(1)
        assert delivery.event.id == sent.id

    async def test_check_passes_while_running_and_fails_once_closed(self, bus: MessageBus) -> None:
        await bus.check()
        await bus.close()
        with pytest.raises(MessagingError):
            await bus.check()
        with pytest.raises(MessagingError):
            await bus.publish("anything", "k", event())
