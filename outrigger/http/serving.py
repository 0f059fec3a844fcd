"""How a service is served: one uvicorn configuration, for `outrigger serve`, `outrigger dev`
and the tests (`outrigger.testing.serving`).

Slow and oversized clients are bounded, so that a bounded number of them cannot exhaust a
replica while well-behaved clients keep being served:

- a request's line and headers (its head) may take `http_max_header_bytes` (431 and the
  connection closes beyond it), and must arrive within `http_header_timeout_seconds` of the
  connection opening, or of the first byte of a kept-alive connection's next request (the
  connection closes): `BoundedHeads` below;
- a body must arrive within `http_body_timeout_seconds` (a 408 problem, from the kit's
  middleware, which also holds it to `max_body_bytes`);
- at most `http_max_connections` connections are open; uvicorn answers 503 beyond them.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import uvicorn
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    import asyncio

    from starlette.types import ASGIApp

    from outrigger.settings import Settings

CONNECTION: ContextVar[asyncio.Transport | None] = ContextVar("outrigger_connection", default=None)
"""The transport of the connection whose request the current task serves (`BoundedHeads`)."""
REFUSED_HEADS = Counter(
    "outrigger_http_refused_heads_total",
    "Connections closed because a request's line and headers were too slow or too large.",
    ["reason"],
)
HEAD_END: Final = b"\r\n\r\n"
TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class BoundedHeads(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a size limit and a deadline for each request's head.

    uvicorn has no option for either with httptools (which buffers a head of any size: four
    unfinished 16 MB heads cost 93 MB), and none for a deadline at all: its keep-alive timer
    runs only between requests and stops at the first byte of the next one, so a client sending
    a byte now and then, or nothing after connecting, held its connection forever. h11's
    `max_incomplete_event_size` bounds only heads that arrive in pieces (one that arrives in a
    single read, up to 256 KiB, passes) and h11 served half the requests per second of
    httptools on a trivial route, so the limits are kept here: the head's end (its blank line)
    is looked for in what arrives, while a head is awaited; everything is parsed by httptools.
    """

    max_head_bytes: int = 16 * 1024
    head_timeout: float = 10.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._head = _Head()
        self._await_head()

    def data_received(self, data: bytes) -> None:
        head = self._head
        if head.bytes is None and (self.cycle is None or self.cycle.response_complete):
            self._await_head()  # the first byte of a kept-alive connection's next request
        awaited = head.bytes is not None
        if awaited and self._head_length(data) > self.max_head_bytes:
            self._refuse_head()
            return
        # a request's task, created while its head is parsed, starts with this connection in
        # its context (`CONNECTION`): a stream may write to it directly (`FrameStream`)
        token = CONNECTION.set(self.transport)
        try:
            super().data_received(data)
        finally:
            CONNECTION.reset(token)
        upgraded = self.transport.get_protocol() is not self  # to WebSocket: not ours to time
        if self.cycle is not head.request_seen or upgraded:  # a request's head is parsed
            head.request_seen = self.cycle
            head.since = head.bytes = None
        elif awaited and head.bytes is not None:  # all of `data` is head, still unfinished
            head.bytes += len(data)
            head.tail = (head.tail + data)[-(len(HEAD_END) - 1) :]
            if head.bytes > self.max_head_bytes and not self.transport.is_closing():
                self._refuse_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head.timer is not None:
            self._head.timer.cancel()
        super().connection_lost(exc)

    def _head_length(self, data: bytes) -> int:
        """The awaited head's length with `data`, up to the head's end if `data` holds it."""
        assert self._head.bytes is not None
        end = (self._head.tail + data).find(HEAD_END)
        if end == -1:
            return self._head.bytes + len(data)
        return self._head.bytes + end + len(HEAD_END) - len(self._head.tail)

    def _refuse_head(self) -> None:
        REFUSED_HEADS.labels("too_large").inc()
        self.transport.write(TOO_LARGE)
        self.transport.close()

    def _await_head(self) -> None:
        self._head.since, self._head.bytes, self._head.tail = self.loop.time(), 0, b""
        if self._head.timer is None:
            self._head.timer = self.loop.call_later(self.head_timeout, self._check_head)

    def _check_head(self) -> None:
        self._head.timer = None
        if self._head.since is None:  # none awaited: the next one arms the timer again
            return
        waited = self.loop.time() - self._head.since
        if waited < self.head_timeout:
            self._head.timer = self.loop.call_later(self.head_timeout - waited, self._check_head)
            return
        REFUSED_HEADS.labels("too_slow").inc()
        self.transport.close()


class _Head:
    """Where a connection's awaited request head is. One attribute of the protocol: uvicorn's
    own 27 and this stay within the 30 that share their keys across instances (CPython), so
    each connection's attributes cost ~300 bytes, not the ~1,600 of a dict of its own."""

    __slots__ = ("bytes", "request_seen", "since", "tail", "timer")

    def __init__(self) -> None:
        self.request_seen: object = None
        # one timer per connection, re-armed only when it fires, so a request costs no timer
        self.timer: asyncio.TimerHandle | None = None
        self.since: float | None = None  # when the awaited head began, if one is
        self.bytes: int | None = None  # its length so far
        self.tail = b""  # its last bytes, where its end may begin


def uvicorn_config(
    app: ASGIApp, settings: Settings, host: str, port: int, **overrides: Any
) -> uvicorn.Config:
    """The uvicorn configuration of a service's app; `overrides` are uvicorn.Config options."""

    class ServiceHTTP(BoundedHeads):
        max_head_bytes = settings.http_max_header_bytes
        head_timeout = settings.http_header_timeout_seconds

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": ServiceHTTP,
        "limit_concurrency": settings.http_max_connections,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        "lifespan": "on",
        **overrides,
    }
    return uvicorn.Config(app, **options)
