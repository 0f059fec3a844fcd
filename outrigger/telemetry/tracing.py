"""OpenTelemetry traces, exported by OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_tracing(service: str) -> TracerProvider | None:
    """Installs a tracer provider exporting to the OTLP endpoint, or returns None when unset.

    The standard `OTEL_*` variables (endpoint, headers, sampler) configure the exporter.
    The caller shuts the provider down on exit so the last spans are flushed.
    """
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create(
        {"service.name": f"outrigger-{service}", "service.namespace": "outrigger"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
