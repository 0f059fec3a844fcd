"""The one middleware every request passes: request id, body limit, metrics, access log, crashes.

Pure ASGI, so streaming responses (SSE) pass through untouched and nothing is buffered.

The access log names a request's path, never its query string, which may carry a token
(`?access_token=`, see `outrigger.auth.dependencies`); `redact_query` is for the places that
show a query (traces).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException

from outrigger.errors import OutriggerError, TooLarge
from outrigger.http.responses import problem_response
from outrigger.telemetry.context import request_id_var
from outrigger.telemetry.metrics import trace_exemplar

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "outrigger_http_requests_total",
    "HTTP requests answered, by route template, method and status class.",
    ["service", "route", "method", "status"],
)
DURATION = Histogram(
    "outrigger_http_request_duration_seconds",
    "Time from request start to the end of the response body.",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT_UNMATCHED = "unmatched"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_UNLOGGED = frozenset({"/healthz", "/readyz", "/metrics"})
# a client may send any token as its method: each would be a new series
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

log = logging.getLogger("outrigger.http")
REDACTED = "REDACTED"
SECRET_PARAMETERS = frozenset({"access_token"})


class RequestMiddleware:
    """Request id (kept or made, echoed), body size limit, RED metrics, JSON access log
    (`access_log`: "all" requests, only "errors" (4xx and 5xx answers), or "off").

    An exception nothing else handled becomes a logged 500 problem with no stack trace.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_body_bytes: int,
        body_timeout_seconds: float = 30.0,
        access_log: str = "all",
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        # the lowest status that gets an access log line: every one, 4xx and 5xx, or none
        self.logged_from = {"all": 0, "errors": 400, "off": 1000}[access_log]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        exchange = _Exchange(self, receive, send, request_id)
        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                raise TooLarge(self.too_large_detail())
            await self.app(scope, exchange.receive, exchange.send)
        except OutriggerError as exc:
            if exchange.response_started:
                raise
            await problem_response(exc, scope["path"])(scope, receive, exchange.send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if exchange.response_started:
                raise
            error = OutriggerError(f"unexpected error; quote request id {request_id}")
            await problem_response(error, scope["path"])(scope, receive, exchange.send)
        finally:
            self._observe(scope, exchange.status, time.perf_counter() - started)
            request_id_var.reset(token)

    def too_large_detail(self) -> str:
        return f"request body exceeds the limit of {self.max_body_bytes} bytes"

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = getattr(scope.get("route"), "path", None) or IN_FLIGHT_UNMATCHED
        method = scope["method"]
        label = method if method in _METHODS else "other"
        REQUESTS.labels(self.service, route, label, f"{status // 100}xx").inc()
        DURATION.labels(self.service, route, label).observe(elapsed, trace_exemplar())
        if status < self.logged_from or (scope["path"] in _UNLOGGED and status < 400):
            return
        log.info(
            "%s %s %d",
            method,
            scope["path"],
            status,
            extra={
                "route": route,
                "method": method,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "client": (scope.get("client") or ("", 0))[0],
            },
        )


class _Exchange:
    """One request's `send` (which notes the status and adds the request id) and `receive`
    (which holds the body to the size limit and its deadline, counted from the first read,
    until the body is complete; then it is the server's `receive` itself). Slots, not closures:
    a streaming response keeps this for as long as it streams, thousands at once."""

    __slots__ = (
        "_header",
        "_middleware",
        "_receive",
        "_send",
        "complete",
        "deadline",
        "received",
        "response_started",
        "status",
    )

    def __init__(
        self, middleware: RequestMiddleware, receive: Receive, send: Send, request_id: str
    ) -> None:
        self._middleware = middleware
        self._receive = receive
        self._send = send
        self._header = (b"x-request-id", request_id.encode())
        self.status = 500
        self.response_started = False
        self.received = 0
        self.deadline: float | None = None
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_started = True
            message["headers"] = [*message.get("headers", ()), self._header]
        await self._send(message)

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()
        limits = self._middleware
        if self.deadline is None:
            self.deadline = asyncio.get_running_loop().time() + limits.body_timeout_seconds
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            # an HTTPException passes FastAPI's body parsing untouched, then is mapped
            raise HTTPException(
                408,
                f"the request body did not arrive within {limits.body_timeout_seconds:g} s",
                headers={"Connection": "close"},
            ) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > limits.max_body_bytes:
                raise HTTPException(413, limits.too_large_detail())
            self.complete = not message.get("more_body", False)
        return message


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def redact_query(query_string: bytes) -> str:
    """A request's query string with the value of every secret parameter (`access_token`)
    replaced by `REDACTED`, as it is shown in traces."""
    query = query_string.decode("latin-1")
    if not any(name in query for name in SECRET_PARAMETERS):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if k in SECRET_PARAMETERS else v) for k, v in pairs])
