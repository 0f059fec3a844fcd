"""The bus's metrics and trace spans, the same for every adapter."""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from opentelemetry.util.types import AttributeValue

    from outrigger.bus.port import Delivery

PUBLISHED = Counter(
    "outrigger_bus_published_total", "Events published and confirmed by the broker.", ["exchange"]
)
PUBLISH_FAILURES = Counter(
    "outrigger_bus_publish_failures_total", "Publishes that raised MessagingError.", ["exchange"]
)
CONSUMED = Counter(
    "outrigger_bus_consumed_total",
    "Deliveries handled, by outcome (ack, retry, drop, duplicate).",
    ["queue", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "outrigger_bus_handler_duration_seconds", "Time a handler took for one delivery.", ["queue"]
)
DUPLICATES = Counter(
    "outrigger_bus_duplicates_total",
    "Deliveries acked without calling the handler, their id being already handled.",
    ["queue"],
)
DEAD_LETTERED = Counter(
    "outrigger_bus_dead_lettered_total", "Messages sent to the dead-letter queue.", ["queue"]
)

_tracer = trace.get_tracer("outrigger.bus")


_NOT_TRACED: AbstractContextManager[Mapping[str, str]] = nullcontext({})


def publish_span(
    system: str, exchange: str, count: int
) -> AbstractContextManager[Mapping[str, str]]:
    """A PRODUCER span around publishing `count` messages; yields the trace headers they carry.

    Without a current trace and without a tracing SDK there is nothing to record or carry, so
    no span is made: the hot path stays cheap.
    """
    if not _tracing(trace.get_current_span()):
        return _NOT_TRACED
    return _publish_span(system, exchange, count)


@contextmanager
def _publish_span(system: str, exchange: str, count: int) -> Iterator[Mapping[str, str]]:
    attributes: dict[str, AttributeValue] = {
        "messaging.system": system,
        "messaging.operation.type": "send",
        "messaging.destination.name": exchange,
        "messaging.batch.message_count": count,
    }
    with _tracer.start_as_current_span(
        f"publish {exchange}", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier


@contextmanager
def consume_span(system: str, delivery: Delivery) -> Iterator[trace.Span]:
    """A CONSUMER span, child of and linked to the producer's context, current in the handler."""
    parent = propagate.extract(delivery.headers)
    producer = trace.get_current_span(parent).get_span_context()
    links = [trace.Link(producer)] if producer.is_valid else None
    attributes: dict[str, AttributeValue] = {
        "messaging.system": system,
        "messaging.operation.type": "process",
        "messaging.destination.name": delivery.exchange,
        "messaging.rabbitmq.destination.routing_key": delivery.routing_key,
        "messaging.consumer.group.name": delivery.queue,
        "messaging.message.id": delivery.event.id,
        "cloudevents.event_type": delivery.event.type,
    }
    with _tracer.start_as_current_span(
        f"process {delivery.queue}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def _tracing(current: trace.Span) -> bool:
    if current.get_span_context().is_valid:
        return True
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
