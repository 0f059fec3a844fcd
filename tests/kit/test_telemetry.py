from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest
from fastapi import APIRouter
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text

from outrigger.db import build_engine
from outrigger.http import create_app
from outrigger.settings import Settings
from outrigger.telemetry import request_id_var
from outrigger.telemetry.labels import BoundedLabel
from outrigger.telemetry.logging import JsonFormatter
from outrigger.telemetry.metrics import exposition

if TYPE_CHECKING:
    from pathlib import Path


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


# --- exemplars ------------------------------------------------------------------------------

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _exemplars(text: str, metric: str, label: str) -> list[str]:
    """The trace ids of the exemplars on the `metric` bucket lines that carry `label`."""
    found = []
    for line in text.splitlines():
        if line.startswith(metric + "_bucket{") and label in line and " # {" in line:
            found.append(line.split('trace_id="')[1].split('"')[0])
    return found


async def test_the_request_histogram_links_to_the_trace_in_openmetrics(tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/traced")
    async def traced() -> dict[str, str]:
        return {}

    @router.get("/untraced")
    async def untraced() -> dict[str, str]:
        return {}

    app = create_app(
        "exemplar-test", Settings(jwt_secret="s" * 32, data_dir=tmp_path), routers=[router]
    )
    tracer = TracerProvider().get_tracer("test")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with tracer.start_as_current_span("request") as span:
            await client.get("/traced")
            trace_id = format(span.get_span_context().trace_id, "032x")
        await client.get("/untraced")
        openmetrics = await client.get("/metrics", headers={"Accept": OPENMETRICS})
        classic = await client.get("/metrics")
    metric = "outrigger_http_request_duration_seconds"
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert _exemplars(openmetrics.text, metric, 'route="/traced"') == [trace_id]
    assert _exemplars(openmetrics.text, metric, 'route="/untraced"') == []
    assert openmetrics.text.rstrip().endswith("# EOF")
    assert classic.headers["content-type"].startswith("text/plain")
    assert _exemplars(classic.text, metric, 'route="/traced"') == []
    assert 'route="/traced"' in classic.text


async def test_the_query_histogram_links_to_the_trace(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite+aiosqlite:///{tmp_path / 'exemplars.db'}")
    tracer = TracerProvider().get_tracer("test")
    try:
        async with engine.connect() as connection:
            with tracer.start_as_current_span("query") as span:
                statement = text("select 1").execution_options(query="exemplar_probe")
                await connection.execute(statement)
                trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        await engine.dispose()
    body, _ = exposition(OPENMETRICS)
    found = _exemplars(body.decode(), "outrigger_db_query_duration_seconds", "exemplar_probe")
    assert found == [trace_id]


def test_a_bounded_label_keeps_known_values_then_the_first_few() -> None:
    label = BoundedLabel(2, known=["users"])
    assert [label(value) for value in ["a", "users", "b", "c", "a", "users"]] == [
        "a",
        "users",
        "b",
        "other",
        "a",
        "users",
    ]
    with pytest.raises(ValueError, match="limit"):
        BoundedLabel(-1)


async def test_made_up_methods_do_not_make_new_series(tmp_path: Path) -> None:
    app = create_app("method-test", Settings(jwt_secret="s" * 32, data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for index in range(5):
            await client.request(f"BREW{index}", "/healthz")
        body = (await client.get("/metrics")).text
    lines = [line for line in body.splitlines() if 'service="method-test"' in line]
    assert not [line for line in lines if "BREW" in line]
    assert any('method="other"' in line for line in lines)
