"""One trace follows a request through HTTP, the event store, RabbitMQ's stand-in and a consumer:
real exporters, real spans, received by an OTLP endpoint in the test."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import httpx

from tests.e2e.dev import running_dev
from tests.e2e.otlp import receiving

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.otlp import Span

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds


async def test_one_trace_runs_from_an_append_through_the_relay_into_the_cache_invalidation(
    tmp_path: Path,
) -> None:
    stream = f"order-{uuid.uuid4().hex[:12]}"
    with receiving() as otlp:
        tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        with running_dev(tmp_path, **tracing) as dev:
            headers = {"Authorization": f"Bearer {dev.token}"}
            entry = f"{dev.url('cache')}/v1/cache/orders/{stream}"
            async with httpx.AsyncClient(headers=headers, timeout=10) as http:
                put = await http.put(entry, content=b"{}", params={"tags": f"stream:{stream}"})
                assert put.status_code == 200, put.text
                appended = await http.post(
                    f"{dev.url('event-store')}/v1/streams/{stream}/events",
                    json={"events": [{"type": "Placed", "data": {"total": 42}}]},
                )
                assert appended.status_code == 201, appended.text
                async with asyncio.timeout(15):  # the relay publishes, the cache invalidates
                    while (await http.get(entry)).status_code != 404:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
        # the process flushed its spans on the way out
    append = one(otlp.spans, SERVER, "POST /v1/streams/{stream_id}/events")
    assert append.attributes["http.request.method"] == "POST"  # the stable HTTP conventions
    assert append.attributes["http.route"] == "/v1/streams/{stream_id}/events"
    assert append.attributes["url.path"] == f"/v1/streams/{stream}/events"
    trace = [span for span in otlp.spans if span.trace_id == append.trace_id]
    published = [s for s in trace if s.kind == PRODUCER and "outrigger.events" in s.name]
    processed = [s for s in trace if s.kind == CONSUMER and "cache.invalidations" in s.name]
    assert published, f"no publish to outrigger.events in the append's trace: {names(trace)}"
    assert processed, f"no cache invalidation in the append's trace: {names(trace)}"
    assert processed[0].attributes["messaging.destination.name"] == "outrigger.events"
    ids = {span.span_id for span in trace}
    assert all(span.parent_id in ids for span in processed), "the consumer continues the trace"


def one(spans: list[Span], kind: int, name: str) -> Span:
    found = [span for span in spans if span.kind == kind and span.name == name]
    assert len(found) == 1, f"{len(found)} spans {name!r} among {names(spans)}"
    return found[0]


def names(spans: list[Span]) -> list[str]:
    return sorted({f"{span.kind}:{span.name}" for span in spans})
