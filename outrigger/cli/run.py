"""`outrigger serve SERVICE` and `outrigger dev`: the commands that run services.

Both bind their ports before they build anything or print a word, so a port in use is one line
and exit code 2. `dev` prints its banner once every service has started. The serving itself
(uvicorn, signals, shutdown) is `outrigger.cli.serve`, imported only when a command runs.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import TYPE_CHECKING

import click

from outrigger import catalog
from outrigger.cli.output import UserError, known_service, without_password
from outrigger.cli.remote import TOKEN_VARIABLE

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outrigger.settings import Settings

DEV_TOKEN_TTL_SECONDS = 7 * 24 * 3600


@click.command()
@click.argument("service")
def serve(service: str) -> None:
    """Serve one SERVICE (audit, event-store, cache, notifications, plugin-executor)."""
    from outrigger.settings import load_settings

    settings = load_settings()
    info = known_service(service)
    if not info.installed:
        built = ", ".join(other.name for other in catalog.installed())
        raise UserError(f"service {info.name} is not part of this build yet (it has: {built})")
    port = settings.port or info.port
    with _listening([(settings.host, port)], "set OUTRIGGER_PORT to another port") as sockets:
        from outrigger.cli import serve as serving
        from outrigger.telemetry import configure_logging, configure_tracing

        configure_logging(info.name, settings.log_level)
        provider = configure_tracing(info.name)
        app = info.app_factory()()
        try:
            serving.run([app], sockets, settings)
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
    from outrigger.settings import load_settings

    settings = load_settings()
    services = catalog.installed()
    addresses = [(settings.host, info.port + port_offset) for info in services]
    with _listening(addresses, "pass --port-offset N to move every port by N") as sockets:
        from outrigger.auth import ALL_SCOPES, TokenIssuer
        from outrigger.cli import serve as serving
        from outrigger.cli.migrate import upgrade_or_fail
        from outrigger.telemetry import configure_logging, configure_tracing

        configure_logging("dev", settings.log_level)
        provider = configure_tracing("dev")
        apps = [info.app_factory()() for info in services]
        if migrate:
            upgrade_or_fail(settings)
        dev_token = TokenIssuer.from_settings(settings).mint(
            "developer", sorted(ALL_SCOPES), DEV_TOKEN_TTL_SECONDS, channels=["**"]
        )
        try:
            serving.run(
                apps,
                sockets,
                settings,
                started=lambda: _print_banner(settings, services, dev_token, addresses),
            )
        finally:
            if provider is not None:
                provider.shutdown()


@contextlib.contextmanager
def _listening(addresses: list[tuple[str, int]], remedy: str) -> Iterator[list[socket.socket]]:
    """Sockets bound to `addresses` (not yet listening), closed on the way out if still open.

    A port in use, or an address that cannot be bound, is a `UserError` naming it and `remedy`.
    """
    sockets: list[socket.socket] = []
    try:
        for host, port in addresses:
            sockets.append(_bind(host, port, remedy))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _bind(host: str, port: int, remedy: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} is in use on {host}: {remedy}") from None
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def _print_banner(
    settings: Settings,
    services: list[catalog.ServiceInfo],
    dev_token: str,
    addresses: list[tuple[str, int]],
) -> None:
    click.echo("\nOutrigger is running (Ctrl-C stops it)\n")
    if not services:
        click.echo("  no service is part of this build yet")
    for info, (host, port) in zip(services, addresses, strict=True):
        base = f"http://{host}:{port}"
        click.echo(f"  {info.name:<16} {base:<24} docs {base}/docs")
    click.echo(f"\n  database  {without_password(settings.database_url)}")
    click.echo(f"  cache     {without_password(settings.redis_url)}")
    click.echo(f"  bus       {without_password(settings.amqp_url)}")
    click.echo(f"  data      {settings.data_dir}")
    click.echo("\n  development token (every scope, 7 days), read by the outrigger commands:\n")
    click.echo(f"  export {TOKEN_VARIABLE}={dev_token}\n")
    example = f"http://{addresses[0][0]}:{addresses[0][1]}" if addresses else "http://…"
    click.echo(f'  curl -H "Authorization: Bearer ${TOKEN_VARIABLE}" {example}/v1/…\n')
