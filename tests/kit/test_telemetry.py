from __future__ import annotations

import logging

import orjson
from opentelemetry.sdk.trace import TracerProvider

from outrigger.telemetry import request_id_var
from outrigger.telemetry.logging import JsonFormatter


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("outrigger.test", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_log_line_is_one_json_object_with_service_level_and_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    token = request_id_var.set("req-42")
    try:
        with tracer.start_as_current_span("work") as span:
            line = JsonFormatter("cache").format(_record("hit ratio low", namespace="users"))
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["service"] == "cache"
    assert entry["level"] == "warning"
    assert entry["message"] == "hit ratio low"
    assert entry["request_id"] == "req-42"
    assert entry["trace_id"] == trace_id
    assert entry["namespace"] == "users"


def test_an_exception_stays_on_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        record = _record("failed")
        record.exc_info = sys.exc_info()
    line = JsonFormatter("audit").format(record)
    assert "\n" not in line
    assert "ValueError" in orjson.loads(line)["exception"]
