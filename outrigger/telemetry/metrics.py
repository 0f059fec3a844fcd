"""Prometheus exposition with trace exemplars.

A histogram observed with `exemplar=trace_exemplar()` keeps, per bucket, the trace id of its
latest observation made while a span was recording. Only the OpenMetrics format carries
exemplars: `/metrics` answers in it when the scraper asks for it (Prometheus does, and stores
them with `--enable-feature=exemplar-storage`), so Grafana can open the trace behind a slow
bucket in Jaeger.
"""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder


def trace_exemplar() -> dict[str, str] | None:
    """`{"trace_id": …}` of the span in progress, if one is recording; else None."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    return {"trace_id": format(span.get_span_context().trace_id, "032x")}


def exposition(accept: str | None) -> tuple[bytes, str]:
    """Every metric in the format the `Accept` header asks for (OpenMetrics or the Prometheus
    text format), and its content type."""
    encode, content_type = choose_encoder(accept or "")
    return encode(REGISTRY), content_type
