"""`FrameStream`, the lean SSE response: what it sends, and each way it ends.

The ASGI-level tests hand it a `send` that records each message (and may block, like a server
whose client reads nothing); the served ones run it behind uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client import REGISTRY

from outrigger.errors import CacheError
from outrigger.http import create_app
from outrigger.http.sse import SHUTDOWN_FRAME, FrameStream, chunked, end_streams
from outrigger.sse import encode
from outrigger.testing import EndOfStream, SseReader, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI
    from starlette.types import Message

    from outrigger.settings import Settings


class Feed:
    """A `FrameSource` the test fills."""

    def __init__(self) -> None:
        self.queued: list[bytes] = []
        self.closed: str | None = None
        self.stream: FrameStream | None = None
        self.failure: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put(self, *frames: bytes) -> None:
        self.queued += frames
        self._wake()

    def fail(self, error: Exception) -> None:
        self.failure = error
        self._wake()

    def attach(self, stream: FrameStream) -> None:
        self.stream = stream

    async def take(self) -> bytes | None:
        while self.closed is None:
            if self.failure is not None:
                raise self.failure
            if self.queued:
                body = b"".join(self.queued)
                self.queued.clear()
                return body
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return None

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Client:
    """The server side of one response: what was sent, a send that may block, and a
    `receive` that answers `http.disconnect` once the client leaves."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.blocked: asyncio.Future[None] | None = None
        self.left = asyncio.Event()

    async def send(self, message: Message) -> None:
        if self.blocked is not None:
            await self.blocked
        self.sent.append(message)

    async def receive(self) -> Message:
        await self.left.wait()
        return {"type": "http.disconnect"}

    @property
    def body(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    @property
    def complete(self) -> bool:
        return any(
            m["type"] == "http.response.body" and not m.get("more_body", False) for m in self.sent
        )


class App:
    """What `end_streams` keys the open streams by (a real app in a server)."""


def scope(app: object) -> dict[str, Any]:
    return {"type": "http", "path": "/stream", "method": "GET", "app": app}


async def until(condition: Any) -> None:
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("it never happened")


def frame(n: int) -> bytes:
    return encode(b"%d" % n, id=n)


async def test_the_head_stops_buffering_and_frames_queued_between_sends_go_out_as_one() -> None:
    feed, client = Feed(), Client()
    stream = FrameStream(feed)
    running = asyncio.create_task(stream(scope(App()), client.receive, client.send))
    await until(lambda: feed.stream is stream and client.sent)
    head = client.sent[0]
    assert head["status"] == 200
    assert dict(head["headers"]) == {
        b"content-type": b"text/event-stream; charset=utf-8",
        b"cache-control": b"no-cache",
        b"x-accel-buffering": b"no",
    }
    feed.put(frame(1))
    await until(lambda: client.body == [frame(1)])
    client.blocked = asyncio.get_running_loop().create_future()  # the client stops reading
    feed.put(frame(2))
    await until(lambda: stream.sending_since is not None)
    feed.put(frame(3), frame(4))  # queued while the send of 2 is pending
    client.blocked.set_result(None)
    client.blocked = None
    await until(lambda: len(client.body) == 3)
    assert client.body == [frame(1), frame(2), frame(3) + frame(4)]
    assert stream.sending_since is None
    feed.close("ended")
    await running
    assert client.complete
    assert client.body[-1] == b""


async def test_a_client_that_leaves_closes_the_source_and_is_sent_nothing_more() -> None:
    feed, client = Feed(), Client()
    running = asyncio.create_task(FrameStream(feed)(scope(App()), client.receive, client.send))
    feed.put(frame(1))
    await until(lambda: client.body == [frame(1)])
    client.left.set()
    await asyncio.wait_for(running, 5)
    assert feed.closed == "client_gone"


async def test_a_send_timed_out_ends_the_stream_at_once_counted_and_logged_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    labels = {"service": "unknown", "route": "/stream"}
    before = REGISTRY.get_sample_value("outrigger_sse_send_timeouts_total", labels) or 0
    feed, client = Feed(), Client()
    stream = FrameStream(feed)
    running = asyncio.create_task(stream(scope(App()), client.receive, client.send))
    await until(lambda: client.sent)
    client.blocked = asyncio.get_running_loop().create_future()  # never resolved
    stream.time_out(2.5)  # nothing is being sent: nothing happens
    feed.put(frame(1))
    await until(lambda: stream.sending_since is not None)
    with caplog.at_level(logging.WARNING, logger="outrigger.http.sse"):
        stream.time_out(2.5)
        await asyncio.wait_for(running, 5)
    assert not client.complete, "no last part for a client that reads nothing"
    assert feed.closed == "ended"
    after = REGISTRY.get_sample_value("outrigger_sse_send_timeouts_total", labels)
    assert after == before + 1
    [line] = [r for r in caplog.records if r.name == "outrigger.http.sse"]
    assert line.getMessage() == "closed an SSE stream on /stream: the client read nothing for 2.5 s"
    assert line.exc_info is None


async def test_an_abandoned_send_ends_the_stream_uncounted() -> None:
    labels = {"service": "unknown", "route": "/stream"}
    before = REGISTRY.get_sample_value("outrigger_sse_send_timeouts_total", labels) or 0
    feed, client = Feed(), Client()
    stream = FrameStream(feed)
    running = asyncio.create_task(stream(scope(App()), client.receive, client.send))
    await until(lambda: client.sent)
    client.blocked = asyncio.get_running_loop().create_future()
    feed.put(frame(1))
    await until(lambda: stream.sending_since is not None)
    stream.abandon()
    await asyncio.wait_for(running, 5)
    assert not running.cancelled()
    assert not client.complete
    after = REGISTRY.get_sample_value("outrigger_sse_send_timeouts_total", labels) or 0
    assert after == before


async def test_end_streams_sends_the_shutdown_frame_last_even_past_a_stuck_send() -> None:
    app = App()
    waiting, stuck = (Feed(), Client()), (Feed(), Client())
    streams = [FrameStream(feed) for feed, _ in (waiting, stuck)]
    running = [
        asyncio.create_task(stream(scope(app), client.receive, client.send))
        for stream, (_, client) in zip(streams, (waiting, stuck), strict=True)
    ]
    await until(lambda: waiting[1].sent and stuck[1].sent)
    stuck[1].blocked = asyncio.get_running_loop().create_future()
    stuck[0].put(frame(1))
    await until(lambda: streams[1].sending_since is not None)
    stuck[1].blocked.set_result(None)  # it will read again, after the shutdown
    stuck[1].blocked = None
    end_streams(app)
    await asyncio.wait_for(asyncio.gather(*running), 5)
    for feed, client in (waiting, stuck):
        assert feed.closed == "shutdown"
        assert client.body[-1] == SHUTDOWN_FRAME
        assert client.complete
    assert frame(1) not in stuck[1].body, "the pending send was given up, not repeated"


async def test_a_source_that_fails_with_a_known_error_ends_the_stream_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed, client = Feed(), Client()
    running = asyncio.create_task(FrameStream(feed)(scope(App()), client.receive, client.send))
    await until(lambda: client.sent)
    with caplog.at_level(logging.WARNING, logger="outrigger.http.sse"):
        feed.fail(CacheError("redis is unavailable"))
        await asyncio.wait_for(running, 5)
    assert client.complete
    assert [r.getMessage() for r in caplog.records if r.name == "outrigger.http.sse"] == [
        "ended an SSE stream: redis is unavailable"
    ]


# --- served ----------------------------------------------------------------------------------


def streaming_app(settings: Settings, feeds: list[Feed]) -> FastAPI:
    router = APIRouter()

    @router.get("/stream")
    async def stream() -> FrameStream:
        feed = Feed()
        feeds.append(feed)
        return FrameStream(feed)

    return create_app("kit-test", settings, routers=[router])


@contextlib.asynccontextmanager
async def reading(url: str) -> AsyncIterator[SseReader]:
    async with (
        httpx.AsyncClient(base_url=url) as client,
        client.stream("GET", "/stream") as response,
    ):
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        yield SseReader(response)


async def test_served_streams_end_with_the_shutdown_event_when_the_server_stops(
    settings: Settings,
) -> None:
    feeds: list[Feed] = []
    async with contextlib.AsyncExitStack() as server:
        url = await server.enter_async_context(
            serving(streaming_app(settings, feeds), timeout_graceful_shutdown=30)
        )
        async with reading(url) as reader:
            await until(lambda: feeds)
            feeds[0].put(frame(1), frame(2))
            assert [(await reader.message()).text for _ in range(2)] == ["1", "2"]
            stopping = asyncio.create_task(server.aclose())
            last = await reader.message()
            assert last.event == "shutdown"
            with pytest.raises(EndOfStream):
                await reader.frame()
            await asyncio.wait_for(stopping, 5)
    assert feeds[0].closed == "shutdown"


async def test_a_served_client_that_leaves_closes_its_source(settings: Settings) -> None:
    feeds: list[Feed] = []
    async with serving(streaming_app(settings, feeds)) as url:
        async with reading(url) as reader:
            await until(lambda: feeds)
            feeds[0].put(frame(1))
            assert (await reader.message()).text == "1"
        await until(lambda: feeds[0].closed is not None)
        assert feeds[0].closed == "client_gone"


async def _raw_stream(url: str, version: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /stream HTTP/{version}\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


@pytest.mark.parametrize("version", ["1.1", "1.0"])
async def test_frames_written_at_once_and_queued_ones_make_one_well_framed_body(
    settings: Settings, version: str
) -> None:
    feeds: list[Feed] = []
    async with serving(streaming_app(settings, feeds)) as url:
        reader, writer = await _raw_stream(url, version)
        try:
            await until(lambda: feeds and feeds[0].stream is not None)
            stream = feeds[0].stream
            assert stream is not None
            await until(lambda: stream.write_now(chunked(frame(1))))  # head sent
            feeds[0].put(frame(2))  # the queued way, through the server's send
            await until(lambda: not feeds[0].queued)
            await until(lambda: stream.write_now(chunked(frame(3))))
            # each part one chunk, whichever way it went, as uvicorn frames a streamed body
            # (for HTTP/1.0 clients too)
            expected = b"".join(chunked(frame(n)) for n in (1, 2, 3))
            received = await asyncio.wait_for(reader.readexactly(len(expected)), 5)
        finally:
            writer.close()
    assert received == expected


async def test_under_another_server_nothing_is_written_at_once() -> None:
    """Without the kit's protocol (no connection in the request's context), every frame goes
    the queued way."""
    client, feed = Client(), Feed()
    stream = FrameStream(feed)
    serving_task = asyncio.create_task(stream(scope(App()), client.receive, client.send))
    await until(lambda: client.sent)
    assert not stream.write_now(chunked(frame(1)))
    feed.put(frame(1))
    await until(lambda: client.body == [frame(1)])
    client.left.set()
    await asyncio.wait_for(serving_task, 5)
