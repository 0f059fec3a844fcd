"""Server-Sent Events: sse-starlette's response, ending quietly when a client stops reading and
politely when the server stops.

sse-starlette gives up on a send after `send_timeout` seconds by raising `SendTimeoutError`
out of the app, which every layer above logged as an unhandled crash with its stack trace. A
client that stopped reading is expected, not a crash: `EventStream` counts it, logs one warning
line, and returns (the server then closes the connection).

A server that starts to stop calls `end_streams(app)`: each open stream of `app` then stops as if
its client had gone, and sends one last frame, `event: shutdown` with a `retry:` hint, before it
ends. EventSource clients reconnect by themselves (with `Last-Event-ID`, so they lose nothing),
and the drain no longer waits for streams that would never end on their own.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

import anyio
from prometheus_client import Counter
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError

from outrigger.sse import encode_json

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

RECONNECT_AFTER_MS = 1000
SHUTDOWN_FRAME = encode_json(
    {"reason": "the server is shutting down; reconnect to resume"},
    event="shutdown",
    retry=RECONNECT_AFTER_MS,
)
FINAL_SEND_SECONDS = 1.0  # a client that reads nothing does not hold the shutdown

SEND_TIMEOUTS = Counter(
    "outrigger_sse_send_timeouts_total",
    "Server-Sent Event streams closed because the client read nothing for the send timeout.",
    ["service", "route"],
)
log = logging.getLogger("outrigger.http.sse")

_open: weakref.WeakKeyDictionary[Any, set[anyio.Event]] = weakref.WeakKeyDictionary()


def end_streams(app: Any) -> None:
    """Asks every open `EventStream` of `app` to send its `shutdown` event and end.

    A server calls it when it starts to stop (uvicorn's `should_exit`); the streams end at the
    next turn of the event loop.
    """
    for ending in list(_open.get(app, ())):
        ending.set()


class EventStream(EventSourceResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ending = anyio.Event()
        streams = _streams_of(scope.get("app"))
        streams.add(ending)
        progress = _Progress(send)
        try:
            await super().__call__(scope, _until(ending, receive), progress.send)
        except* SendTimeoutError:
            app = scope.get("app")
            service = getattr(getattr(app, "state", None), "service", "unknown")
            route = getattr(scope.get("route"), "path", scope["path"])
            SEND_TIMEOUTS.labels(service, route).inc()
            log.warning(
                "closed an SSE stream on %s: the client read nothing for %g s",
                scope["path"],
                self.send_timeout,
            )
        finally:
            streams.discard(ending)
        if ending.is_set() and not progress.finished:
            with anyio.move_on_after(FINAL_SEND_SECONDS):
                await progress.finish(self, SHUTDOWN_FRAME)


def _streams_of(app: Any) -> set[anyio.Event]:
    if app is None:
        return set()  # nothing can end it: an app outside a server
    return _open.setdefault(app, set())


def _until(ending: anyio.Event, receive: Receive) -> Receive:
    """`receive`, answering `http.disconnect` once `ending` is set: sse-starlette then stops the
    stream as it does when a client goes (its body iterator closed, no more frames)."""

    async def receive_or_end() -> Message:
        message: Message = {"type": "http.disconnect"}
        async with anyio.create_task_group() as group:

            async def from_client() -> None:
                nonlocal message
                message = await receive()
                group.cancel_scope.cancel()

            group.start_soon(from_client)
            await ending.wait()
            group.cancel_scope.cancel()
        return message

    return receive_or_end


class _Progress:
    """How far a response got: whether its head and its last body part were sent."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.finished = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished = True
        await self._send(message)

    async def finish(self, response: EventSourceResponse, last: bytes) -> None:
        """Sends `last` as the response's final body part (its head first, if still unsent)."""
        if not self.started:
            await self.send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response.raw_headers,
                }
            )
        await self.send({"type": "http.response.body", "body": last, "more_body": False})
