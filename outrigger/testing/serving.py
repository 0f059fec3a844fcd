"""Serving an app for real: uvicorn on a free port of 127.0.0.1, in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING

import uvicorn

from outrigger.http.serving import uvicorn_config
from outrigger.http.sse import end_streams

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from fastapi import FastAPI


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(uvicorn.Server):
    """Leaves the process's signal handlers alone (pytest owns them); ends the app's SSE streams
    when it stops, as `outrigger serve` does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_streams(self.config.app)
        await super().shutdown(sockets=sockets)


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, *, send_buffer: int | None = None, **options: object
) -> AsyncIterator[str]:
    """`app` (built by `create_app`) served on a free port of 127.0.0.1 as its service is served
    (`outrigger.http.serving.uvicorn_config` with the app's settings), lifespan included;
    yields its URL.

    `send_buffer` shrinks the accepted sockets' send buffers (and sets TCP_NODELAY, which asyncio
    leaves unset on sockets uvicorn is given), so a client that stops reading blocks the server
    after a few frames rather than megabytes. `options` override uvicorn.Config options.
    """
    listener = socket.socket()
    if send_buffer is not None:  # accepted sockets inherit both
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    overrides: dict[str, object] = {"timeout_graceful_shutdown": 2, **options}
    server = _Server(uvicorn_config(app, app.state.settings, "127.0.0.1", port, **overrides))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the server stopped while starting")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        listener.close()
