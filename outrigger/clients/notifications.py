"""`NotificationsClient`: publish to the notifications hub, and follow its channels.

    async with NotificationsClient("http://127.0.0.1:8004", token=token) as hub:
        await hub.publish("orders.eu", "order.placed", {"order": 7})
        async for received in hub.subscribe("orders.*", "jobs.7f3c"):
            match received:
                case Notification(id=id, event=event, data=data):
                    print(id, event, data)
                case Reset():
                    reload()                          # messages were missed: start afresh

`publish` gives a message without an `id` a new one before sending, so sending it again is safe:
the hub answers a channel's known id with its first history id, marked `duplicate`, and stores
nothing. The client does so itself, under its retry policy, when an answer is lost; to retry
after `publish` has raised, pass the same `id`.

`subscribe` follows channels over Server-Sent Events for as long as the caller iterates. When
the connection drops, goes silent for `idle_timeout` (the hub sends a heartbeat every 15 s), or
the hub ends it with its `shutdown` event, the client reconnects by itself with `Last-Event-ID`
(the id of the last event received), so nothing history holds is missed or repeated. It waits
what the hub asked with `retry:` (1 s until it says), and backs off from there while
reconnecting fails. If history no longer reaches back that far, the first event after the
reconnect is a `Reset`. Heartbeats are not yielded.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson

from outrigger.clients.base import ServiceClient, decode
from outrigger.clients.notifications_models import (
    ChannelInfo,
    Notification,
    Published,
    Received,
    Reset,
)
from outrigger.errors import ExternalServiceError, InfrastructureError, RateLimited
from outrigger.resilience import Retry
from outrigger.sse import frames

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from outrigger.errors import OutriggerError

SSE_PATH = "/v1/sse"
RECONNECT_SECONDS = 1.0  # until the hub says otherwise with `retry:`
MAX_RECONNECT_SECONDS = 30.0  # the longest wait while reconnecting keeps failing
# the hub's own events, which carry no published message
RESET_EVENT = "reset"
SHUTDOWN_EVENT = "shutdown"
# the wait before reconnecting, injectable for tests
sleep = asyncio.sleep


def _channel(channel: str) -> str:
    return f"/v1/channels/{quote(channel, safe='')}"


class NotificationsClient(ServiceClient):
    """The notifications hub's HTTP API (see the module docstring); every method raises the
    `outrigger.errors` class of the problem the hub answered (`InvalidInput`, `Forbidden`, ...)."""

    service = "notifications"

    async def publish(
        self, channel: str, event: str, data: Any, id: str | None = None
    ) -> Published:
        """Publishes `data` (any JSON value, at most 64 KiB encoded) as `event` on `channel`
        (scope `notify:publish`). `id` is yours for the message: publishing the same `id` to the
        channel again within the hub's de-duplication window (a day by default) stores nothing and
        answers the first history id, `duplicate` True. Without one, the client makes one up."""
        body = {"event": event, "data": data, "id": id if id is not None else str(uuid.uuid4())}
        response = await self._request(
            "POST", f"{_channel(channel)}/events", json=body, expect=(200, 201), idempotent=True
        )
        return self._model(Published, response)

    async def channel(self, channel: str) -> ChannelInfo:
        """Subscribers now (on every replica) and the history kept of `channel` (scope
        `notify:publish`, or `notify:subscribe` with a grant covering it)."""
        return self._model(ChannelInfo, await self._request("GET", _channel(channel)))

    async def subscribe(
        self,
        *channels: str,
        last_event_id: str | None = None,
        since_earliest: bool = False,
        idle_timeout: float = 60.0,
    ) -> AsyncGenerator[Received, None]:
        """The messages of `channels` (names, or patterns: `*` one segment, a final `>` the
        rest), live from now; after `last_event_id` (a history id received before) if given,
        or from the earliest history keeps with `since_earliest`. Goes on until the caller
        stops iterating, reconnecting by itself (see the module docstring).

        Errors the hub answers are raised (`Unauthorized`, `Forbidden` naming a channel the
        token's grants do not cover, `InvalidInput` for a malformed channel or id), and
        `ExternalServiceError` when the first connection cannot be made at all (a wrong URL, or
        the hub is not running). Once connected, an unreachable or overloaded hub is waited for.
        """
        if not channels:
            raise ValueError("subscribe to at least one channel")
        if last_event_id is not None and since_earliest:
            raise ValueError("give last_event_id or since_earliest, not both")
        cursor = _Cursor(last_event_id, since_earliest)
        failures = 0
        first = True
        while True:
            following = self._follow(channels, cursor, idle_timeout, first=first)
            try:
                async with contextlib.aclosing(following) as connection:
                    async for received in connection:
                        yield received
            except _NotConnected as refused:
                failures += 1
                backoff = Retry(
                    attempts=1,
                    base_delay=cursor.retry,
                    max_delay=max(cursor.retry, MAX_RECONNECT_SECONDS),
                )
                delay = max(backoff.delay(failures), refused.retry_after)
            else:
                failures = 0
                delay = cursor.retry
            first = False
            await sleep(delay)

    async def _follow(
        self,
        channels: Sequence[str],
        cursor: _Cursor,
        idle_timeout: float,
        *,
        first: bool,
    ) -> AsyncGenerator[Received, None]:
        """One connection's events, moving `cursor` along. Ends when the hub ends the stream or
        the connection breaks; raises `_NotConnected` when no stream could be opened and trying
        again may help, and the error the hub answered otherwise."""
        params: dict[str, str | list[str]] = {"channel": list(channels)}
        headers = {"Accept": "text/event-stream"}
        if cursor.last_id is not None:
            headers["Last-Event-ID"] = cursor.last_id
        elif cursor.since_earliest:
            params["since"] = "earliest"
        timeout = httpx.Timeout(self._http.timeout.connect, read=idle_timeout)
        request = self._http.build_request(
            "GET", SSE_PATH, params=params, headers=headers, timeout=timeout
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            if first or isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
                raise self._unreachable("GET", SSE_PATH, exc) from exc
            raise _NotConnected() from exc
        try:
            if response.status_code != 200:
                await response.aread()
                error = self._failure("GET", SSE_PATH, response)
                if isinstance(error, InfrastructureError | RateLimited):
                    raise _NotConnected(_retry_after(error)) from error
                raise error
            async for frame in frames(response.aiter_lines()):
                if frame.retry is not None:
                    cursor.retry = frame.retry / 1000
                if frame.event == SHUTDOWN_EVENT:
                    return
                if frame.id is None or not frame.data:
                    continue  # a heartbeat, or a frame that only sets `retry`
                received = self._received(frame.id, frame.event, frame.text)
                cursor.last_id = received.id
                yield received
        except httpx.TransportError:
            return  # dropped, or silent for idle_timeout: reconnect after the last event
        finally:
            await response.aclose()

    def _received(self, id: str, event: str | None, text: str) -> Received:
        source = f"GET {self.base_url}{SSE_PATH}"
        if event == RESET_EVENT:
            reset = decode(_ResetData, text, f"{source} (reset {id})")
            return Reset(id, reset.reason, reset.resume_after)
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ExternalServiceError(
                f"{source} sent event {id} with data that is not JSON: {exc}"
            ) from exc
        return Notification(id, event or "message", data)


@dataclass
class _Cursor:
    """Where a subscription resumes (after `last_id`, else from the earliest kept message if
    `since_earliest`, else live) and how long it waits before reconnecting (the hub's `retry:`)."""

    last_id: str | None
    since_earliest: bool
    retry: float = RECONNECT_SECONDS


@dataclass(frozen=True, slots=True)
class _ResetData:
    reason: str
    resume_after: str


class _NotConnected(Exception):
    """No stream could be opened now (unreachable, overloaded); `retry_after`: the hub's hint."""

    def __init__(self, retry_after: float = 0.0) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def _retry_after(error: OutriggerError) -> float:
    try:
        seconds = float(error.headers.get("Retry-After", "0"))
    except ValueError:
        return 0.0  # an HTTP date: the backoff decides
    return min(seconds, MAX_RECONNECT_SECONDS) if math.isfinite(seconds) and seconds > 0 else 0.0
