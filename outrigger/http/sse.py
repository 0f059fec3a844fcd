"""Server-Sent Events: sse-starlette's response (`EventStream`), and a lean one for hubs that
hold many thousands of streams (`FrameStream`), both ending quietly when a client stops reading
and politely when the server stops.

sse-starlette gives up on a send after `send_timeout` seconds by raising `SendTimeoutError`
out of the app, which every layer above logged as an unhandled crash with its stack trace. A
client that stopped reading is expected, not a crash: `EventStream` counts it, logs one warning
line, and returns (the server then closes the connection).

A server that starts to stop calls `end_streams(app)`: each open stream of `app` then stops as if
its client had gone, and sends one last frame, `event: shutdown` with a `retry:` hint, before it
ends. EventSource clients reconnect by themselves (with `Last-Event-ID`, so they lose nothing),
and the drain no longer waits for streams that would never end on their own.

`FrameStream` is for a hub that fans messages out to thousands of streams in one process:
sse-starlette runs four tasks per stream and a cancel scope per send (51 KB per stream, and a few
messages a second at 5,000 streams). A `FrameStream` is pure ASGI: it sends what its
`FrameSource` has queued, all of it joined into one body part per send, from one task of its
own, while the request's task (whose stack runs through every middleware) only waits for the
client to leave: each message wakes one shallow task, not the whole stack. It has no timer of
its own: whoever feeds it watches `sending_since` and gives up a send the client does not read
(`time_out`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio
from prometheus_client import Counter
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.responses import Response

from outrigger.errors import OutriggerError
from outrigger.http.serving import CONNECTION
from outrigger.sse import encode_json

if TYPE_CHECKING:
    from collections.abc import Callable

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

# each open stream of an app, as the callable that ends it (with the shutdown frame)
_open: weakref.WeakKeyDictionary[Any, set[Callable[[], object]]] = weakref.WeakKeyDictionary()


def end_streams(app: Any) -> None:
    """Asks every open `EventStream` and `FrameStream` of `app` to send its `shutdown` event
    and end.

    A server calls it when it starts to stop (uvicorn's `should_exit`); the streams end at the
    next turn of the event loop.
    """
    for end in list(_open.get(app, ())):
        end()


class EventStream(EventSourceResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ending = anyio.Event()
        streams = _streams_of(scope.get("app"))
        streams.add(ending.set)
        progress = _Progress(send)
        try:
            await super().__call__(scope, _until(ending, receive), progress.send)
        except* SendTimeoutError:
            _count_send_timeout(scope, self.send_timeout)
        finally:
            streams.discard(ending.set)
        if ending.is_set() and not progress.finished:
            with anyio.move_on_after(FINAL_SEND_SECONDS):
                await progress.finish(self, SHUTDOWN_FRAME)


def _streams_of(app: Any) -> set[Callable[[], object]]:
    if app is None:
        return set()  # nothing can end it: an app outside a server
    return _open.setdefault(app, set())


def _count_send_timeout(scope: Scope, seconds: float | None) -> None:
    app = scope.get("app")
    service = getattr(getattr(app, "state", None), "service", "unknown")
    route = getattr(scope.get("route"), "path", scope["path"])
    SEND_TIMEOUTS.labels(service, route).inc()
    log.warning(
        "closed an SSE stream on %s: the client read nothing for %g s", scope["path"], seconds
    )


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


STREAM_HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx (and ingress-nginx) pass each frame on at once
)


class FrameSource(Protocol):
    """What one `FrameStream` sends: frames queued by whoever feeds it (a hub)."""

    def attach(self, stream: FrameStream) -> None:
        """The stream starts (its head is about to be sent): from now on it takes this source's
        frames. The feeder keeps it to watch `sending_since` and to `abandon` or `time_out` a
        send the client does not read."""
        ...

    async def take(self) -> bytes | None:
        """Every frame queued now, joined into one body part, waiting while there is none;
        None once the source is closed (the stream then ends). An `OutriggerError` ends the
        stream too, logged as a warning."""
        ...

    def close(self, reason: str) -> None:
        """The stream is ending: `take` answers None from now on. `reason` is "client_gone"
        (it left), "shutdown" (the server is stopping) or "ended" (the stream ended for the
        source's own reason). Called once at least; must be idempotent."""
        ...


def chunked(frame: bytes) -> bytes:
    """`frame` as one chunk of an HTTP/1.1 chunked body (RFC 9112 §7.1), for `write_now`."""
    return b"%x\r\n%b\r\n" % (len(frame), frame)


class FrameStream(Response):
    """A Server-Sent Events response that sends what a `FrameSource` queues (module doc).

    It ends when the source's `take` answers None (a last, empty body part), when the client
    leaves (nothing more is sent), when the server stops (`end_streams`: the `shutdown` event
    last), or when its feeder gives up a send the client does not read (`abandon`,
    `time_out`): the stream then returns at once without its last part, and the server closes
    the connection.
    """

    media_type = "text/event-stream"

    def __init__(self, source: FrameSource, *, status_code: int = 200) -> None:
        # not Response.__init__: no body to render, and its headers are the shared ones
        self.source = source
        self.status_code = status_code
        self.background = None
        self.raw_headers = list(STREAM_HEADERS)
        self.sending_since: float | None = None
        """The event loop's time at which the send under way began; None between sends."""
        self._sender: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[Any] | None = None  # the request's task, while it listens
        self._abandoned = False
        self._timed_out: float | None = None
        self._shutdown = False
        self._direct: asyncio.Transport | None = None  # once the head is sent (`write_now`)

    def write_now(self, chunk: bytes) -> bool:
        """Writes one frame, as `chunked(frame)`, straight to the connection if nothing is in
        its way: the head sent, no send under way, nothing buffered for the client. False
        (nothing written) otherwise: the caller queues the frame for `take` instead, and later
        frames wait behind it. (uvicorn sends a body of unknown length in chunks, to HTTP/1.0
        clients too, and so does this; a test holds the two together.) A hub makes the chunk
        once for every stream a message goes to.

        A hub's fan-out is one write per stream this way, instead of a task's wake-up and a
        send down the middleware: at 5,000 streams that cut the CPU of a delivery 3.5 times
        (bench/RESULTS.md). A client that stops reading fills its buffer, after which its
        frames go the queued way, with its flow control and its send timeout.
        """
        transport = self._direct
        if (
            transport is None
            or self.sending_since is not None
            or transport.get_write_buffer_size()
            or transport.is_closing()
        ):
            return False
        transport.write(chunk)
        return True

    def abandon(self) -> None:
        """Gives up the send under way, if there is one (else nothing happens): the stream
        ends at once, without its last part, and the server closes the connection."""
        if self.sending_since is not None and self._sender is not None and not self._abandoned:
            self._abandoned = True
            self._sender.cancel()  # it waits in `send`: nothing of this part was written

    def time_out(self, seconds: float) -> None:
        """`abandon`, counted in `outrigger_sse_send_timeouts_total` and logged as one warning
        line: the client read nothing for `seconds`."""
        if self.sending_since is not None and not self._abandoned:
            self._timed_out = seconds
            self.abandon()

    def shut_down(self) -> None:
        """Ends the stream with the `shutdown` event (see `end_streams`)."""
        self._shutdown = True
        self.source.close("shutdown")
        self.abandon()  # a send the client does not read would hold the shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The request's task, whose stack runs through every middleware, only listens for the
        # client leaving (resumed once); the sends run in a task of their own, shallow, which
        # is all that wakes up for each message.
        streams = _streams_of(scope.get("app"))
        end = self.shut_down
        streams.add(end)
        self.source.attach(self)
        sender = self._sender = asyncio.create_task(self._send_frames(send, CONNECTION.get()))
        self._listener = asyncio.current_task()
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
            self._listener = None
            self.source.close("client_gone")
        except asyncio.CancelledError:
            task, self._listener = asyncio.current_task(), None
            if not sender.done() or task is None or task.uncancel() > 0:
                raise  # not the sender's word that it is done: someone else's cancellation
        finally:
            self._listener = None
            streams.discard(end)
            self.source.close("ended")
            if not sender.done():
                sender.cancel()  # a send to a client that has left ends at once anyway
        await asyncio.wait({sender})
        if self._timed_out is not None:
            _count_send_timeout(scope, self._timed_out)
        if not sender.cancelled():
            sender.result()  # a failure of the sends is the request's

    async def _send_frames(self, send: Send, connection: asyncio.Transport | None) -> None:
        """The sends: the head, every frame the source queues, the last part (none for a client
        that reads nothing); then it wakes the request's task."""
        source, now = self.source, asyncio.get_running_loop().time
        try:
            try:
                head = {"type": "http.response.start", "status": self.status_code}
                await send({**head, "headers": self.raw_headers})
                self._direct = connection
                while not self._shutdown:
                    try:
                        body = await source.take()
                    except OutriggerError as exc:
                        log.warning("ended an SSE stream: %s", exc.detail)
                        break
                    if body is None:
                        break
                    self.sending_since = now()
                    try:
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                    finally:
                        self.sending_since = None
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not self._abandoned or task is None or task.uncancel() > 0:
                    raise
            self._direct = None
            if not self._abandoned or self._shutdown:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FINAL_SEND_SECONDS):
                        last = SHUTDOWN_FRAME if self._shutdown else b""
                        await send({"type": "http.response.body", "body": last, "more_body": False})
        finally:
            self._direct = None
            if self._listener is not None:
                self._listener.cancel()  # it listens for a client that is done with
