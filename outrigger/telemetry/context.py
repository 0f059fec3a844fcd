"""What the work in progress carries along: its request id (for logs and outgoing calls) and its
W3C trace context (for work that continues later, elsewhere: a stored event, a queued message)."""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

request_id_var: ContextVar[str | None] = ContextVar("outrigger_request_id", default=None)
_W3C = TraceContextTextMapPropagator()


def current_request_id() -> str | None:
    return request_id_var.get()


def trace_context() -> dict[str, str] | None:
    """`traceparent` (and `tracestate`) of the current span; None outside a recorded trace."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier or None
