"""A notifications hub in memory that speaks the service's documented wire format, for the SDK and
CLI tests: they prove the client's side of the protocol (reconnecting with `Last-Event-ID`,
`retry:`, `reset`, `shutdown`, heartbeats, problems) on their own, against answers the test
controls, whatever state the real service is in.

What it answers (services/notifications/README.md): `POST /v1/channels/{channel}/events` (201,
200 for a known id), `GET /v1/channels/{channel}`, and `GET /v1/sse?channel=…` with replay after
`Last-Event-ID` (header or `?last_event_id=`), `?since=earliest`, a `reset` frame when history no
longer reaches back, problems for a bad token, scope, grant or id. History ids are
`<milliseconds>-<sequence>` in one order across channels. A test drives the rest: `cut()` breaks
every open stream's connection (through `CuttingTransport`, as a network would), `shut_down()`
sends them the kit's `shutdown` frame, `heartbeat()`, `trim()`, `retry_ms` (sent first on each
stream) and `refusals` (statuses the next subscriptions are answered with).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from outrigger.auth import Principal, require_scope
from outrigger.errors import InfrastructureError, RateLimited
from outrigger.http import ServiceRoute, create_app
from outrigger.http.sse import SHUTDOWN_FRAME
from outrigger.settings import Settings
from outrigger.sse import comment, encode, encode_json
from services.notifications.domain import (
    HistoryId,
    channel_not_granted,
    check_channel,
    check_subscription,
    follows,
    granted,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from fastapi import FastAPI

SECRET = "notifications-wire-test-secret-of-32-bytes"
CUT = b": the network cuts this connection here\n\n"  # never reaches a client (CuttingTransport)
START_MS = 1_765_000_000_000
WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Stored:
    id: HistoryId
    channel: str
    event: str
    data: bytes
    key: str | None


@dataclass
class Stream:
    """One open subscription: what it follows, and the frames waiting to be sent."""

    subscriptions: tuple[str, ...]
    frames: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def follows(self, channel: str) -> bool:
        return any(follows(s, channel) for s in self.subscriptions)


@dataclass(frozen=True)
class Seen:
    """What a subscription request asked for."""

    channels: list[str]
    last_event_id: str | None
    since: str | None


class PublishIn(BaseModel):
    event: str
    data: Any = None
    id: str | None = None


class WireHub:
    def __init__(self) -> None:
        self.settings = Settings(jwt_secret=SECRET)
        self.history: list[Stored] = []
        self.floor: HistoryId | None = None  # trimmed up to here: resuming before it resets
        self.streams: list[Stream] = []
        self.seen: list[Seen] = []
        self.retry_ms: int | None = None
        self.refusals: list[int] = []
        self._sequence = itertools.count(1)
        self._keys: dict[tuple[str, str], HistoryId] = {}
        self._changed = asyncio.Event()

    # --- what the test does -------------------------------------------------------------------

    def publish(self, channel: str, event: str, data: Any, key: str | None = None) -> str:
        """Stores and offers a message; its history id."""
        stored, _ = self._store(channel, event, orjson.dumps(data), key)
        return str(stored)

    def cut(self) -> None:
        """Breaks every open stream's connection mid-way."""
        self._broadcast(CUT, end=True)

    def shut_down(self) -> None:
        """Sends every open stream the kit's `shutdown` frame, as a stopping server does, but
        leaves the connections open: the client must go on the frame, not on the close (which a
        proxy may hold back)."""
        self._broadcast(SHUTDOWN_FRAME)

    def heartbeat(self) -> None:
        self._broadcast(comment("heartbeat"))

    def trim(self, keep: int) -> None:
        """Keeps the newest `keep` messages: resuming from before them resets."""
        dropped, self.history = self.history[:-keep], self.history[-keep:]
        if dropped:
            self.floor = dropped[-1].id

    async def until(self, done: Callable[[], bool]) -> None:
        """Returns once `done()` holds, looking after each subscription opened or closed."""
        async with asyncio.timeout(WAIT_SECONDS):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def streams_open(self, count: int) -> None:
        """Returns once `count` streams are open (a subscriber connected)."""
        await self.until(lambda: len(self.streams) >= count)

    # --- the service's side -------------------------------------------------------------------

    def app(self) -> FastAPI:
        router = APIRouter(prefix="/v1", route_class=ServiceRoute)
        router.add_api_route("/channels/{channel}/events", self._publish, methods=["POST"])
        router.add_api_route("/channels/{channel}", self._describe, methods=["GET"])
        router.add_api_route("/sse", self._subscribe, methods=["GET"])
        return create_app("notifications", self.settings, routers=[router])

    async def _publish(
        self,
        channel: str,
        body: PublishIn,
        response: Response,
        _: Annotated[Principal, require_scope("notify:publish")],
    ) -> dict[str, Any]:
        id, duplicate = self._store(
            check_channel(channel), body.event, orjson.dumps(body.data), body.id
        )
        response.status_code = 200 if duplicate else 201
        return {"channel": channel, "id": str(id), "duplicate": duplicate}

    async def _describe(
        self, channel: str, _: Annotated[Principal, require_scope("notify:publish")]
    ) -> dict[str, Any]:
        kept = [m.id for m in self.history if m.channel == check_channel(channel)]
        subscribers = sum(stream.follows(channel) for stream in self.streams)
        return {
            "channel": channel,
            "subscribers": subscribers,
            "length": len(kept),
            "first_id": str(kept[0]) if kept else None,
            "last_id": str(kept[-1]) if kept else None,
        }

    async def _subscribe(
        self,
        request: Request,
        principal: Annotated[Principal, require_scope("notify:subscribe")],
        channel: Annotated[list[str], Query()],
        last_event_id: str | None = None,
        since: Literal["earliest"] | None = None,
    ) -> StreamingResponse:
        for subscription in channel:
            if not granted(principal.channels, check_subscription(subscription)):
                raise channel_not_granted(subscription)
        resume = request.headers.get("Last-Event-ID", last_event_id)
        self.seen.append(Seen(channel, resume, since))
        self._changed.set()
        if self.refusals:
            status = self.refusals.pop(0)
            if status == 429:
                raise RateLimited("too many subscriptions", headers={"Retry-After": "7"})
            raise InfrastructureError("the hub is overloaded", headers={"Retry-After": "3"})
        after = HistoryId.parse(resume) if resume is not None else None
        stream = Stream(tuple(channel))
        first = [] if self.retry_ms is None else [b"retry: %d\n\n" % self.retry_ms]
        first += self._catch_up(stream, after, since == "earliest")
        self.streams.append(stream)  # no await since the catch-up: nothing published between
        self._changed.set()
        return StreamingResponse(self._frames(stream, first), media_type="text/event-stream")

    def _catch_up(self, stream: Stream, after: HistoryId | None, earliest: bool) -> list[bytes]:
        if after is None and not earliest:
            return []
        mine = [m for m in self.history if stream.follows(m.channel)]
        if after is not None and self.floor is not None and after < self.floor:
            newest = str(mine[-1].id) if mine else str(self.floor)
            reset = {"reason": "history no longer reaches back that far", "resume_after": newest}
            return [encode_json(reset, id=newest, event="reset")]
        start = after or HistoryId(0, 0)
        return [_frame(m) for m in mine if m.id > start]

    async def _frames(self, stream: Stream, first: list[bytes]) -> AsyncIterator[bytes]:
        try:
            yield b"".join(first) or comment("connected")
            while (frame := await stream.frames.get()) is not None:
                yield frame
        finally:
            self.streams.remove(stream)
            self._changed.set()

    def _store(
        self, channel: str, event: str, data: bytes, key: str | None
    ) -> tuple[HistoryId, bool]:
        if key is not None and (channel, key) in self._keys:
            return self._keys[channel, key], True
        stored = Stored(HistoryId(START_MS, next(self._sequence)), channel, event, data, key)
        self.history.append(stored)
        if key is not None:
            self._keys[channel, key] = stored.id
        for stream in self.streams:
            if stream.follows(channel):
                stream.frames.put_nowait(_frame(stored))
        return stored.id, False

    def _broadcast(self, frame: bytes, *, end: bool = False) -> None:
        for stream in self.streams:
            stream.frames.put_nowait(frame)
            if end:
                stream.frames.put_nowait(None)


def _frame(message: Stored) -> bytes:
    return encode(message.data, id=str(message.id), event=message.event)


class CuttingTransport(httpx.AsyncBaseTransport):
    """The network between client and hub: passes everything, but a stream reaching the hub's
    `CUT` marker breaks there (`httpx.ReadError`, as a reset connection does)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "text/event-stream" not in response.headers.get("content-type", ""):
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Cuttable(response),
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Cuttable(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.aiter_raw():
            before, cut, _ = chunk.partition(CUT)
            if before:
                yield before
            if cut:
                raise httpx.ReadError("connection reset by peer")

    async def aclose(self) -> None:
        await self.response.aclose()
