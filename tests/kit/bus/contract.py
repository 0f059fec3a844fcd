"""The MessageBus contract, written once; each adapter's test module subclasses `BusContract`.

A subclass provides the `bus_url` fixture, `make_bus()` (a bus not yet started), its
`system` (the `messaging.system` of its spans) and, when its broker outlives the test,
`forget()` to delete what the test declared (`self.declared`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
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
from outrigger.testing import ContractSuite, unique

if TYPE_CHECKING:
    from collections.abc import Sequence

WAIT_SECONDS = 10.0


class Names:
    """Exchange and queue names unique to one test, remembered for clean-up."""

    def __init__(self) -> None:
        self.suffix = unique("")
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


class BusContract(ContractSuite[MessageBus]):
    system: str

    @pytest.fixture
    def bus_url(self) -> str:
        raise NotImplementedError

    def make_bus(self, url: str, **options: Any) -> MessageBus:
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _where(self, bus_url: str) -> None:
        self.url, self.declared = bus_url, Names()

    async def make_adapter(self, **options: Any) -> MessageBus:
        bus = self.make_bus(self.url, **options)
        await bus.start()
        return bus

    @pytest.fixture
    def names(self, new_adapter: Any) -> Names:
        """This test's names; `new_adapter`'s teardown forgets them, also in a test that
        builds its buses by hand."""
        return self.declared

    @pytest.fixture
    def new_bus(self, new_adapter: Any) -> Any:
        return new_adapter

    @pytest.fixture
    def bus(self, adapter: MessageBus) -> MessageBus:
        return adapter

    @pytest.fixture
    def spans(self) -> InMemorySpanExporter:
        return InMemorySpanExporter()

    @pytest.fixture
    def provider(self, spans: InMemorySpanExporter) -> TracerProvider:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(spans))
        return provider

    @pytest.fixture
    async def traced_bus(self, new_bus: Any, provider: TracerProvider) -> MessageBus:
        """A bus whose spans go to `spans`, through `provider`."""
        bus: MessageBus = await new_bus(tracer_provider=provider)
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
        inbox.answer = lambda d: Retry("not yet") if d.attempt < 2 else Ack()  # type: ignore[method-assign,assignment]
        await bus.subscribe(queue, [(exchange, "#")], inbox, retry_delay_seconds=0.05)
        await bus.publish(exchange, "k", event())
        await inbox.wait(2)
        assert [d.attempt for d in inbox.deliveries] == [1, 2]
        assert inbox.deliveries[1].exchange == exchange
        assert metric("outrigger_bus_consumed_total", queue=queue, outcome="retry") == 1
        assert metric("outrigger_bus_consumed_total", queue=queue, outcome="ack") == 1

    async def test_a_reply_reaches_the_requesters_queue_with_its_correlation_id(
        self, bus: MessageBus, new_bus: Any, names: Names
    ) -> None:
        exchange, requests, replies = names.exchange(), names.queue("asks"), names.queue("answers")
        answers = Inbox()
        requester: MessageBus = await new_bus()
        await requester.subscribe(replies, [], answers)

        async def serve(delivery: Delivery) -> Outcome:
            await bus.reply(delivery, event("test.answered", {"to": delivery.event.id}))
            return Ack()

        await bus.subscribe(requests, [(exchange, "ask")], serve)
        asked = event("test.asked")
        await requester.publish(exchange, "ask", asked, reply_to=replies, correlation_id="c-7")
        [answer] = await answers.wait(1)
        assert answer.event.type == "test.answered"
        assert answer.event.data == {"to": asked.id}
        assert answer.correlation_id == "c-7"
        assert (answer.exchange, answer.routing_key, answer.reply_to) == ("", replies, None)

    async def test_a_retried_request_keeps_its_reply_to_and_a_reply_defaults_to_its_id(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, requests, replies = names.exchange(), names.queue("asks"), names.queue("answers")
        answers = Inbox()
        await bus.subscribe(replies, [], answers)
        seen: list[Delivery] = []

        async def serve(delivery: Delivery) -> Outcome:
            seen.append(delivery)
            if delivery.attempt == 1:
                return Retry("not yet")
            await bus.reply(delivery, event("test.answered"))
            return Ack()

        await bus.subscribe(requests, [(exchange, "ask")], serve, retry_delay_seconds=0.05)
        await bus.publish(exchange, "ask", asked := event("test.asked"), reply_to=replies)
        [answer] = await answers.wait(1)
        assert [(d.attempt, d.reply_to, d.correlation_id) for d in seen] == [
            (1, replies, None),
            (2, replies, None),
        ]
        assert answer.correlation_id == asked.id

    async def test_replying_to_a_request_without_reply_to_is_refused(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        await bus.publish(exchange, "k", event())
        [delivery] = await inbox.wait(1)
        assert delivery.reply_to is None
        with pytest.raises(ValueError, match="no reply_to"):
            await bus.reply(delivery, event())

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

    async def test_the_consumer_continues_the_producers_trace(
        self,
        traced_bus: MessageBus,
        names: Names,
        provider: TracerProvider,
        spans: InMemorySpanExporter,
    ) -> None:
        exchange, queue, bus = names.exchange(), names.queue(), traced_bus
        seen: list[trace.SpanContext] = []

        async def handler(delivery: Delivery) -> Outcome:
            seen.append(trace.get_current_span().get_span_context())
            return Ack()

        await bus.subscribe(queue, [(exchange, "#")], handler)
        with provider.get_tracer("tests").start_as_current_span("POST /orders") as request:
            await bus.publish(exchange, "orders.created", sent := event())
        [process] = await finished(spans, f"process {queue}")
        [publish] = await finished(spans, f"publish {exchange}")
        request_context = request.get_span_context()
        assert {publish.context.trace_id, process.context.trace_id} == {request_context.trace_id}
        assert publish.kind is SpanKind.PRODUCER
        assert publish.parent is not None
        assert publish.parent.span_id == request_context.span_id
        assert process.kind is SpanKind.CONSUMER
        assert process.parent is not None
        assert process.parent.span_id == publish.context.span_id
        assert [link.context.span_id for link in process.links] == [publish.context.span_id]
        assert seen == [process.context]
        routing_key = f"messaging.{self.system}.destination.routing_key"
        assert (
            attributes(publish).items()
            >= {
                "messaging.system": self.system,
                "messaging.operation.name": "publish",
                "messaging.operation.type": "send",
                "messaging.destination.name": exchange,
                routing_key: "orders.created",
                "messaging.message.id": sent.id,
            }.items()
        )
        assert (
            attributes(process).items()
            >= {
                "messaging.system": self.system,
                "messaging.operation.name": "process",
                "messaging.operation.type": "process",
                "messaging.destination.name": exchange,
                routing_key: "orders.created",
                "messaging.consumer.group.name": queue,
                "messaging.message.id": sent.id,
            }.items()
        )
        assert process.status.status_code is StatusCode.UNSET

    async def test_publish_many_continues_each_events_own_trace_context(
        self,
        traced_bus: MessageBus,
        names: Names,
        provider: TracerProvider,
        spans: InMemorySpanExporter,
    ) -> None:
        exchange, queue, bus = names.exchange(), names.queue(), traced_bus
        await bus.subscribe(queue, [(exchange, "#")], Inbox())
        tracer = provider.get_tracer("tests")
        requests, events = [], []
        for number in range(2):
            with tracer.start_as_current_span(f"POST /orders/{number}") as request:
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
            requests.append(request.get_span_context())
            events.append(event(extensions={"traceparent": carrier["traceparent"]}))
        events.append(event())  # no trace of its own: continues the relay's
        with tracer.start_as_current_span("relay") as relay:
            await bus.publish_many(exchange, [("orders.created", e) for e in events])
        processed = await finished(spans, f"process {queue}", count=3)
        [publish] = await finished(spans, f"publish {exchange}")
        created = {attributes(s)["messaging.message.id"]: s for s in spans_named(spans, "create")}
        parents = [*requests, relay.get_span_context()]
        for sent, parent in zip(events, parents, strict=True):
            create = created[sent.id]
            assert create.kind is SpanKind.PRODUCER
            assert create.parent is not None
            assert create.parent.span_id == parent.span_id
            assert create.context.trace_id == parent.trace_id
            assert attributes(create)["messaging.operation.type"] == "create"
            [process] = [s for s in processed if attributes(s)["messaging.message.id"] == sent.id]
            assert process.parent is not None
            assert process.parent.span_id == create.context.span_id
            assert process.context.trace_id == parent.trace_id
        assert publish.kind is SpanKind.CLIENT
        assert publish.parent is not None
        assert publish.parent.span_id == relay.get_span_context().span_id
        assert {link.context.span_id for link in publish.links} == {
            span.context.span_id for span in created.values()
        }
        assert attributes(publish)["messaging.batch.message_count"] == 3

    async def test_publish_many_carries_the_current_trace_to_every_message(
        self,
        traced_bus: MessageBus,
        names: Names,
        provider: TracerProvider,
        spans: InMemorySpanExporter,
    ) -> None:
        exchange, queue, bus = names.exchange(), names.queue(), traced_bus
        await bus.subscribe(queue, [(exchange, "#")], Inbox())
        with provider.get_tracer("tests").start_as_current_span("batch job"):
            await bus.publish_many(exchange, [("k", event()) for _ in range(3)])
        processed = await finished(spans, f"process {queue}", count=3)
        [publish] = await finished(spans, f"publish {exchange}")
        assert publish.kind is SpanKind.PRODUCER
        assert attributes(publish)["messaging.batch.message_count"] == 3
        assert "messaging.message.id" not in attributes(publish)
        assert {s.parent.span_id for s in processed if s.parent} == {publish.context.span_id}
        assert spans_named(spans, "create") == []

    async def test_a_failing_handler_marks_its_span_as_an_error(
        self,
        traced_bus: MessageBus,
        names: Names,
        provider: TracerProvider,
        spans: InMemorySpanExporter,
    ) -> None:
        exchange, queue, bus = names.exchange(), names.queue(), traced_bus

        async def failing(delivery: Delivery) -> Outcome:
            raise RuntimeError("disk full")

        await bus.subscribe(queue, [(exchange, "#")], failing, max_attempts=1)
        await bus.publish(exchange, "k", event())
        [process] = await finished(spans, f"process {queue}")
        assert process.status.status_code is StatusCode.ERROR
        assert process.status.description == "RuntimeError: disk full"
        assert attributes(process)["error.type"] == "RuntimeError"
        assert [e.name for e in process.events] == ["exception"]

    async def test_without_a_trace_no_trace_context_is_sent(
        self, new_bus: Any, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        bus = await new_bus(tracer_provider=NoOpTracerProvider())
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        await bus.publish_many(exchange, [("k", event())])
        [delivery] = await inbox.wait(1)
        assert "traceparent" not in delivery.headers


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def spans_named(spans: InMemorySpanExporter, operation: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.split(" ")[0] == operation]


async def finished(
    spans: InMemorySpanExporter, name: str, count: int = 1
) -> Sequence[ReadableSpan]:
    """The finished spans called `name`, once there are `count` of them."""
    await eventually(
        lambda: len([s for s in spans.get_finished_spans() if s.name == name]) >= count
    )
    return [s for s in spans.get_finished_spans() if s.name == name]
