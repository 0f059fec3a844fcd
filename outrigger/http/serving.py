"""How a service is served: one uvicorn configuration, for `outrigger serve`, `outrigger dev`
and the tests (`outrigger.testing.serving`).

Slow and oversized clients are bounded, so that a bounded number of them cannot exhaust a
replica while well-behaved clients keep being served:

- the request line and headers together may take `http_max_header_bytes` (h11's
  `max_incomplete_event_size`; a longer head is a 400 and the connection closes);
- they must arrive within `http_header_timeout_seconds` of the connection opening, or of the
  first byte of a keep-alive connection's next request (`HeaderDeadline` below);
- a body must arrive within `http_body_timeout_seconds` (a 408 problem, from the kit's
  middleware, which also holds it to `max_body_bytes`);
- at most `http_max_connections` connections are open; uvicorn answers 503 beyond them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import uvicorn
from prometheus_client import Counter
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    import asyncio

    from starlette.types import ASGIApp

    from outrigger.settings import Settings

SLOW_HEADERS = Counter(
    "outrigger_http_slow_headers_total",
    "Connections closed because a request's line and headers took longer than the timeout.",
)


class HeaderDeadline(H11Protocol):
    """h11 over uvicorn, with a deadline for each request's line and headers.

    uvicorn has no option for it: its keep-alive timer runs only between requests and stops at
    the first byte of the next one, so a client sending a header byte now and then (or nothing
    at all after connecting) held its connection, and its buffer, forever.
    """

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._request_seen: object = None
        self._header_deadline: asyncio.TimerHandle | None = None
        self._start_header_deadline()

    def data_received(self, data: bytes) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if self._header_deadline is None and idle:  # the first byte of the next request
            self._start_header_deadline()
        super().data_received(data)
        upgraded = self.transport.get_protocol() is not self  # to WebSocket: not ours to time
        if self.cycle is not self._request_seen or upgraded:  # a request's headers are complete
            self._request_seen = self.cycle
            self._stop_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        super().connection_lost(exc)

    def _start_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        SLOW_HEADERS.inc()
        self.transport.close()


def uvicorn_config(
    app: ASGIApp, settings: Settings, host: str, port: int, **overrides: Any
) -> uvicorn.Config:
    """The uvicorn configuration of a service's app; `overrides` are uvicorn.Config options."""

    class ServiceHTTP(HeaderDeadline):
        header_timeout = settings.http_header_timeout_seconds

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": ServiceHTTP,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
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
