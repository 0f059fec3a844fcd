"""`outrigger serve SERVICE` and `outrigger dev` (every installed service in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from typing import TYPE_CHECKING

import click
import uvicorn
import uvloop

from outrigger import catalog
from outrigger.auth import ALL_SCOPES, TokenIssuer
from outrigger.cli.migrate import upgrade
from outrigger.settings import Settings, load_settings
from outrigger.telemetry import configure_logging, configure_tracing

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator

    from fastapi import FastAPI

DEV_TOKEN_TTL_SECONDS = 7 * 24 * 3600


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to us, so several can share one process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        _freeze_startup_objects()


def _freeze_startup_objects() -> None:
    """Moves everything imports and the lifespan built out of the collector's reach (`gc.freeze`).

    Those ~110,000 long-lived objects were walked by every full collection: 50-130 ms stalls
    under load (cache GET p99 113-134 ms before, 17-21 ms after, and 30 % more throughput).
    Nothing built at startup is garbage, so nothing is lost.
    """
    gc.collect()
    gc.freeze()


def _server(app: FastAPI, host: str, port: int, settings: Settings) -> _Server:
    from outrigger.http.serving import uvicorn_config

    return _Server(uvicorn_config(app, settings, host, port))


async def _serve_all(servers: list[_Server]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _run(servers: list[_Server]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_all(servers))


@click.command()
@click.argument("service")
def serve(service: str) -> None:
    """Serve one SERVICE (audit, event-store, cache, notifications, plugin-executor)."""
    settings = load_settings()
    info = catalog.service(service)
    if not info.installed:
        raise click.ClickException(f"service {info.name} is not part of this build yet")
    configure_logging(info.name, settings.log_level)
    provider = configure_tracing(info.name)
    app = info.app_factory()()
    try:
        _run([_server(app, settings.host, settings.port or info.port, settings)])
    finally:
        if provider is not None:
            provider.shutdown()


@click.command()
@click.option("--migrate/--no-migrate", default=True, help="Apply migrations first.")
@click.option(
    "--port-offset", default=0, type=click.IntRange(0, 50000), help="Added to every fixed port."
)
def dev(migrate: bool, port_offset: int) -> None:
    """Every installed service in one process, on its fixed port, with embedded backends."""
    settings = load_settings()
    configure_logging("dev", settings.log_level)
    services = catalog.installed()
    apps = [(info, info.app_factory()()) for info in services]
    if migrate:
        upgrade(settings)
    dev_token = TokenIssuer.from_settings(settings).mint(
        "developer", sorted(ALL_SCOPES), DEV_TOKEN_TTL_SECONDS, channels=["**"]
    )
    _print_table(settings, services, dev_token, port_offset)
    servers = [_server(app, settings.host, info.port + port_offset, settings) for info, app in apps]
    _run(servers)


def _print_table(
    settings: Settings, services: list[catalog.ServiceInfo], dev_token: str, port_offset: int
) -> None:
    click.echo("\nOutrigger is running (Ctrl-C stops it)\n")
    if not services:
        click.echo("  no service is part of this build yet")
    for info in services:
        base = f"http://{settings.host}:{info.port + port_offset}"
        click.echo(f"  {info.name:<16} {base:<24} docs {base}/docs")
    click.echo(f"\n  database  {settings.database_url}")
    click.echo(f"  cache     {settings.redis_url}")
    click.echo(f"  bus       {settings.amqp_url}")
    click.echo("\n  development token (every scope, 7 days):\n")
    click.echo(f"  export TOKEN={dev_token}\n")
    click.echo('  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:<port>/v1/…\n')
