"""Logs, metrics and traces, set up the same way in every service."""

from outrigger.telemetry.context import current_request_id, request_id_var, trace_context
from outrigger.telemetry.labels import BoundedLabel
from outrigger.telemetry.logging import configure_logging
from outrigger.telemetry.metrics import exposition, trace_exemplar
from outrigger.telemetry.tracing import configure_tracing

__all__ = [
    "BoundedLabel",
    "configure_logging",
    "configure_tracing",
    "current_request_id",
    "exposition",
    "request_id_var",
    "trace_context",
    "trace_exemplar",
]
