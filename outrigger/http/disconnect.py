"""A request whose client went away stops: its handler is cancelled, and with it the query it
waits on (psycopg cancels a statement on the server when its task is cancelled, and the pool
gets the connection back clean).

Without this, a handler blocked on a lock keeps its pooled connection until the lock is freed,
long after its client gave up, while every other request waits for a connection. Only requests
still without a response are watched, and only once they have run for `WATCH_AFTER_SECONDS`:
quick requests cost a timer, streaming responses (SSE) watch their clients themselves.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

WATCH_AFTER_SECONDS = 0.25
CLIENT_CLOSED_REQUEST = 499  # nginx's status for it: the access log and metrics show it as such


class CancelOnDisconnect:
    """Pure ASGI middleware: cancels the request's task when its client disconnects before the
    response started, and answers 499 (which nobody receives) for the log and the metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(receive, send, _has_body(scope))
        try:
            await self.app(scope, request.receive, request.send)
        except asyncio.CancelledError:
            if not request.client_gone or request.task.uncancel() > 0:
                raise  # cancelled by someone else too (a shutdown): theirs to handle
            await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST})
            await send({"type": "http.response.body", "body": b""})
        else:
            if request.client_gone:  # the app finished anyway: take our cancellation back
                request.task.uncancel()
        finally:
            request.responding()


class _Request:
    """The request's `receive`, and a watcher that waits for `http.disconnect` once the app has
    read the body (so that it never takes a body message the app wants). What only a watcher
    needs is made when one starts: a streaming response keeps its `_Request` for as long as it
    streams, thousands of them at once."""

    __slots__ = (
        "_body_read",
        "_done",
        "_pending",
        "_receive",
        "_send",
        "_timer",
        "_watcher",
        "client_gone",
        "task",
    )

    def __init__(self, receive: Receive, send: Send, has_body: bool) -> None:
        task = asyncio.current_task()
        assert task is not None, "ASGI apps run in a task of the server's"
        self.task = task
        self.client_gone = False
        self._receive = receive
        self._send = send
        loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = loop.call_later(WATCH_AFTER_SECONDS, self.watch)
        # set once the app has read the whole body; None: there is none to wait for
        self._body_read = asyncio.Event() if has_body else None
        self._pending: list[Message] | None = None  # what the watcher received for the app
        self._watcher: asyncio.Task[None] | None = None
        self._done = False

    async def receive(self) -> Message:
        if self._pending:
            return self._pending.pop(0)
        message = await self._receive()
        if (
            self._body_read is not None
            and message["type"] == "http.request"
            and not message.get("more_body", False)
        ):
            self._body_read.set()
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.responding()
        await self._send(message)

    def watch(self) -> None:
        """Called once the request has run a while: starts waiting for the client to leave."""
        if not self._done and self._watcher is None:
            self._watcher = asyncio.create_task(self._wait_for_disconnect())

    def responding(self) -> None:
        """The response has started (or the request ended): the app's own business from now."""
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    async def _wait_for_disconnect(self) -> None:
        if self._body_read is not None:
            await self._body_read.wait()
        while True:
            message = await self._receive()
            # the (empty) body of a body-less request, if unread
            self._pending = [*(self._pending or ()), message]
            if message["type"] == "http.disconnect":
                break
        if not self._done:
            self.client_gone = True
            self.task.cancel()


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False
