"""The bus's metrics and trace spans, the same for every adapter.

Spans follow OpenTelemetry's messaging semantic conventions:

- `publish <exchange>` (operation type `send`) covers one `publish` or `publish_many` call, a
  child of the context current at the call. Its context travels in each message's
  `traceparent`/`tracestate` headers, unless the event names its own parent.
- An event that carries the CloudEvents Distributed Tracing extension (`traceparent`, and
  `tracestate` if any, in `extensions`) is published as a continuation of that context: it
  gets its own `create <exchange>` span, a child of that context, which its message carries;
  the `publish` span is then a CLIENT span linked to every `create` span.
- `process <queue>` covers one handler call, a child of the context the message carries (so
  one trace runs from the request that caused an event into its consumers), linked to it.

Without a tracing SDK and without a current trace nothing is recorded and no headers are
written: the hot path stays cheap. Events with their own parent keep it even then.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from opentelemetry.context import Context
    from opentelemetry.util.types import AttributeValue

    from outrigger.bus.port import CloudEvent, Delivery

DEFAULT_EXCHANGE = "amq.default"  # how OpenTelemetry names the nameless default exchange

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

TRACEPARENT, TRACESTATE = "traceparent", "tracestate"
_TRACE_EXTENSIONS = (TRACEPARENT, TRACESTATE)
_UNTRACED: AbstractContextManager[Sequence[Mapping[str, str] | None] | None] = nullcontext(None)


class BusTracing:
    """Makes one adapter's spans. `tracer_provider` defaults to the global one."""

    def __init__(
        self,
        system: str,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        server: tuple[str, int] | None = None,
    ) -> None:
        self._provider = tracer_provider
        self._tracer = trace.get_tracer("outrigger.bus", tracer_provider=tracer_provider)
        self._routing_key = f"messaging.{system}.destination.routing_key"
        self._common: dict[str, AttributeValue] = {"messaging.system": system}
        if server is not None:
            self._common["server.address"], self._common["server.port"] = server

    def publishing(
        self, exchange: str, messages: Sequence[tuple[str, CloudEvent]], *, batch: bool
    ) -> AbstractContextManager[Sequence[Mapping[str, str] | None] | None]:
        """Spans around publishing `messages`; yields each message's trace headers (None when
        nothing is traced). `batch` is True for `publish_many`, False for `publish`."""
        own_parents = any(TRACEPARENT in event.extensions for _, event in messages)
        if not own_parents and not self._recording():
            return _UNTRACED
        return self._publishing(exchange, messages, batch=batch, own_parents=own_parents)

    @contextmanager
    def _publishing(
        self,
        exchange: str,
        messages: Sequence[tuple[str, CloudEvent]],
        *,
        batch: bool,
        own_parents: bool,
    ) -> Iterator[Sequence[Mapping[str, str] | None]]:
        attributes = self._attributes("publish", "send", exchange)
        if batch:
            attributes["messaging.batch.message_count"] = len(messages)
        else:
            [(routing_key, event)] = messages
            attributes[self._routing_key] = routing_key
            attributes["messaging.message.id"] = event.id
        created = (
            [self._create(exchange, key, event) for key, event in messages] if own_parents else []
        )
        with self._tracer.start_as_current_span(
            f"publish {exchange or DEFAULT_EXCHANGE}",
            kind=SpanKind.CLIENT if own_parents else SpanKind.PRODUCER,
            attributes=attributes,
            links=[trace.Link(context) for context, _ in created if context.is_valid],
        ) as span:
            if own_parents:
                traces: Sequence[Mapping[str, str]] = [carrier for _, carrier in created]
            else:  # the publish span's context is every message's creation context
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                traces = [carrier] * len(messages)
            try:
                yield traces
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise

    def _create(
        self, exchange: str, routing_key: str, event: CloudEvent
    ) -> tuple[trace.SpanContext, Mapping[str, str]]:
        """A `create` span for one event, child of its own parent or the current context."""
        parent: Context | None = None
        if TRACEPARENT in event.extensions:
            parent = propagate.extract(
                {
                    name: event.extensions[name]
                    for name in _TRACE_EXTENSIONS
                    if name in event.extensions
                }
            )
        attributes = self._attributes("create", "create", exchange)
        attributes[self._routing_key] = routing_key
        attributes["messaging.message.id"] = event.id
        span = self._tracer.start_span(
            f"create {exchange or DEFAULT_EXCHANGE}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        span.end()
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return span.get_span_context(), carrier

    def processing(self, delivery: Delivery) -> trace.Span:
        """A started CONSUMER span, child of and linked to the producer's context; the caller
        makes it current for the handler (`trace.set_span_in_context`) and ends it. Without a
        tracing SDK it is the producer's non-recording span, built at no cost."""
        parent = propagate.extract(delivery.headers)
        if not self._sdk():
            return trace.get_current_span(parent)  # what the no-op tracer would start
        producer = trace.get_current_span(parent).get_span_context()
        attributes = self._attributes("process", "process", delivery.exchange)
        attributes[self._routing_key] = delivery.routing_key
        attributes["messaging.consumer.group.name"] = delivery.queue
        attributes["messaging.message.id"] = delivery.event.id
        attributes["cloudevents.event_id"] = delivery.event.id
        attributes["cloudevents.event_type"] = delivery.event.type
        attributes["cloudevents.event_source"] = delivery.event.source
        return self._tracer.start_span(
            f"process {delivery.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=[trace.Link(producer)] if producer.is_valid else None,
            attributes=attributes,
        )

    def _attributes(self, name: str, kind: str, exchange: str) -> dict[str, AttributeValue]:
        return {
            **self._common,
            "messaging.operation.name": name,
            "messaging.operation.type": kind,
            "messaging.destination.name": exchange or DEFAULT_EXCHANGE,
        }

    def _recording(self) -> bool:
        return trace.get_current_span().get_span_context().is_valid or self._sdk()

    def _sdk(self) -> bool:
        """True if spans are recorded (a tracing SDK is installed, or was given)."""
        provider = self._provider or trace.get_tracer_provider()
        return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
