"""`EventStream` served for real: a server that stops ends each open stream with `shutdown`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import httpx
from fastapi import APIRouter

from outrigger.http import EventStream, create_app
from outrigger.http.sse import RECONNECT_AFTER_MS, end_streams
from outrigger.sse import encode
from outrigger.testing import EndOfStream, SseReader, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from outrigger.settings import Settings
    from outrigger.sse import Frame

SHUTDOWN_SECONDS = 2.0


def streaming_app(settings: Settings, closed: list[int]) -> FastAPI:
    """An app whose `/numbers` streams 1, 2, 3… forever; `closed` records each stream's end."""
    router = APIRouter()

    @router.get("/numbers")
    async def numbers() -> EventStream:
        async def counting() -> AsyncIterator[bytes]:
            n = 0
            try:
                while True:
                    n += 1
                    yield encode(b"%d" % n, id=n)
                    await asyncio.sleep(0.05)
            finally:
                closed.append(n)

        return EventStream(counting(), ping=0)

    return create_app("kit-test", settings, routers=[router])


async def test_stopping_the_server_ends_open_streams_with_a_shutdown_event(
    settings: Settings,
) -> None:
    closed: list[int] = []
    app = streaming_app(settings, closed)
    async with contextlib.AsyncExitStack() as server:
        # a grace far longer than the test allows: only the streams ending let it stop in time
        url = await server.enter_async_context(serving(app, timeout_graceful_shutdown=30))
        async with (
            httpx.AsyncClient(base_url=url) as client,
            client.stream("GET", "/numbers") as first,
            client.stream("GET", "/numbers") as second,
        ):
            readers = [SseReader(first), SseReader(second)]
            for reader in readers:
                assert (await reader.message()).text == "1"
            started = time.monotonic()
            stopping = asyncio.create_task(server.aclose())
            for reader in readers:
                last = await _last_message(reader)
                assert last.event == "shutdown"
                assert last.retry == RECONNECT_AFTER_MS
                assert "reconnect" in last.json()["reason"]
            await asyncio.wait_for(stopping, SHUTDOWN_SECONDS)
            assert time.monotonic() - started < SHUTDOWN_SECONDS
    assert len(closed) == 2, "each stream's generator ran its cleanup"


async def test_end_streams_leaves_the_streams_of_other_apps_alone(settings: Settings) -> None:
    app, other = streaming_app(settings, []), streaming_app(settings, [])
    async with (
        serving(app) as url,
        serving(other) as other_url,
        httpx.AsyncClient() as client,
        client.stream("GET", f"{url}/numbers") as response,
        client.stream("GET", f"{other_url}/numbers") as other_response,
    ):
        ended, going_on = SseReader(response), SseReader(other_response)
        await ended.message()
        await going_on.message()
        end_streams(app)
        assert (await _last_message(ended)).event == "shutdown"
        numbers = [int((await going_on.message()).text) for _ in range(3)]
        assert numbers == sorted(numbers)
        assert numbers[-1] >= 4


async def _last_message(reader: SseReader) -> Frame:
    last = None
    with contextlib.suppress(EndOfStream):
        while True:
            last = await reader.message(max_wait=SHUTDOWN_SECONDS)
    assert last is not None
    return last
