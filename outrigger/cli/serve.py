"""Serving apps with uvicorn for `outrigger serve` and `outrigger dev`: several servers in one
process and event loop, stopped together by SIGINT or SIGTERM.

Each server logs as its app's service (`app.state.service`), however many share the process.
When a server starts to stop, its open Server-Sent Event streams end with a final `shutdown`
event (`outrigger.http.sse.end_streams`), so the drain takes as long as the requests in flight,
not until `OUTRIGGER_SHUTDOWN_GRACE_SECONDS` runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
from typing import TYPE_CHECKING

import uvicorn
import uvloop

from outrigger.cli.output import CommandFailed, UserError
from outrigger.http.sse import end_streams
from outrigger.telemetry.logging import service_var

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator, Sequence

    from fastapi import FastAPI

    from outrigger.settings import Settings


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to us, so several can share one process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # set in this server's task: what it and the tasks it starts log names its service
        service = _service_of(self)
        if service is not None:
            service_var.set(service)
        await super().serve(sockets=sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        lifespan_log = logging.getLogger("uvicorn.error")
        lifespan_log.addFilter(_settings_error_traceback)
        try:
            await super().startup(sockets=sockets)
        except SystemExit:
            # uvicorn's answer to a lifespan that failed (and logged why): it would end the
            # process under the other servers; this one just stops, unstarted, instead
            self.should_exit = True
            return
        finally:
            lifespan_log.removeFilter(_settings_error_traceback)
        _freeze_startup_objects()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # The streams end once super() has closed the listeners (they run at its first await),
        # so a client that reconnects at once reaches another replica, not this one.
        end_streams(self.config.app)
        await super().shutdown(sockets=sockets)


def _settings_error_traceback(record: logging.LogRecord) -> bool:
    """Drops the traceback uvicorn logs for a lifespan that raised `SettingsError`: the command
    ends with that error's one line (`_serve_all`), as it does for a bad setting read earlier."""
    message = record.getMessage()
    return not (message.startswith("Traceback") and "outrigger.errors.SettingsError" in message)


MAX_OPEN_FILES = 1_048_576  # Linux's default nr_open, when the hard limit is unlimited


def _freeze_startup_objects() -> None:
    """Moves everything imports and the lifespan built out of the collector's reach (`gc.freeze`).

    Those ~110,000 long-lived objects were walked by every full collection: 50-130 ms stalls
    under load (cache GET p99 113-134 ms before, 17-21 ms after, and 30 % more throughput).
    Nothing built at startup is garbage, so nothing is lost.
    """
    gc.collect()
    gc.freeze()


def _open_files_to_the_hard_limit() -> None:
    """Raises the soft limit of open files to the hard one, as Go's runtime does: each client
    connection is a file, and a soft limit of 1,024 (many shells' default) would refuse
    connections long before `http_max_connections` (the notifications hub holds thousands)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _server(app: FastAPI, host: str, port: int, settings: Settings) -> _Server:
    from outrigger.http.serving import uvicorn_config

    return _Server(uvicorn_config(app, settings, host, port))


def run(
    apps: Sequence[FastAPI],
    sockets: Sequence[socket.socket],
    settings: Settings,
    *,
    started: Callable[[], None] | None = None,
) -> None:
    """Serves each app on its bound socket until SIGINT or SIGTERM; calls `started` once every
    server has started (not at all if one fails to)."""
    _open_files_to_the_hard_limit()
    servers = []
    for app, sock in zip(apps, sockets, strict=True):
        host, port = sock.getsockname()[:2]
        servers.append(_server(app, host, port, settings))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_all(servers, sockets, started=started))


async def _serve_all(
    servers: Sequence[_Server],
    sockets: Sequence[socket.socket] | None = None,
    *,
    started: Callable[[], None] | None = None,
) -> None:
    """Runs `servers` (each on its socket, when given) until SIGINT or SIGTERM asks them to stop,
    or one of them stops; a second signal stops them without waiting for requests in flight.

    A server that could not start (its lifespan failed, and logged why) is `CommandFailed`, or
    a `UserError` with the setting's one line when its lifespan refused a setting.
    """
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True

    listening = [[sock] for sock in sockets] if sockets is not None else [None] * len(servers)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        serving = [
            asyncio.ensure_future(server.serve(sockets=socks))
            for server, socks in zip(servers, listening, strict=True)
        ]
        if started is not None:
            await _when_started(servers, serving, started)
        if serving:
            await asyncio.wait(serving, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*serving)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    unstarted = [server for server in servers if not server.started]
    for server in unstarted:
        refused = getattr(getattr(server.config.app, "state", None), "startup_error", None)
        if isinstance(refused, str):
            raise UserError(refused)
    failed = [_service_of(server) or "a server" for server in unstarted]
    if failed:
        raise CommandFailed(f"{', '.join(failed)} could not start (its log says why)")


async def _when_started(
    servers: Sequence[_Server], serving: Sequence[asyncio.Future[None]], started: Callable[[], None]
) -> None:
    while not all(server.started for server in servers):
        if any(task.done() for task in serving):
            return
        await asyncio.sleep(0.05)
    started()


def _service_of(server: uvicorn.Server) -> str | None:
    """The service of the server's app (`create_app` names it in `app.state.service`)."""
    service = getattr(getattr(server.config.app, "state", None), "service", None)
    return service if isinstance(service, str) else None
