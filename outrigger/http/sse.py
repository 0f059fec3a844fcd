"""Server-Sent Events: sse-starlette's response, ending quietly when a client stops reading.

sse-starlette gives up on a send after `send_timeout` seconds by raising `SendTimeoutError`
out of the app, which every layer above logged as an unhandled crash with its stack trace. A
client that stopped reading is expected, not a crash: `EventStream` counts it, logs one warning
line, and returns (the server then closes the connection).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import Counter
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

SEND_TIMEOUTS = Counter(
    "outrigger_sse_send_timeouts_total",
    "Server-Sent Event streams closed because the client read nothing for the send timeout.",
    ["service", "route"],
)
log = logging.getLogger("outrigger.http.sse")


class EventStream(EventSourceResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
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
