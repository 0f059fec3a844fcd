"""What the commands that call a running service share (`outrigger events …`, `outrigger cache …`).

Each takes the service's URL from `--url`, else its variable (`OUTRIGGER_CACHE_URL`, ...), else
127.0.0.1 on the service's port, and a bearer token from `--token`, else `OUTRIGGER_TOKEN` (the
variable `outrigger dev` tells you to export; `outrigger token` mints one). Results go to stdout
as JSON, one document per line. Every failure is one line on stderr, never a traceback: exit
code 2 for a usage error (bad arguments, no token, input the service refuses as invalid), 1 for
anything else the service answers or a service that does not answer; Ctrl-C ends with 130.

This module loads no client: a command imports the SDK (and httpx) when it runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson

from outrigger import catalog
from outrigger.cli.output import CommandFailed, UserError
from outrigger.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

TOKEN_VARIABLE = "OUTRIGGER_TOKEN"


def fail(message: str) -> NoReturn:
    """Ends the command with `message` as one line on stderr, exit code 1."""
    raise CommandFailed(message)


class ServiceCommands(click.Group):
    """The commands of one service: input the service refuses as invalid is a usage error (exit
    code 2); everything else goes wrong as in every `outrigger` command (`outrigger.cli`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInput as exc:
            raise UserError(exc.detail) from None


@dataclass(frozen=True)
class Target:
    """Where a command sends its requests, and with which token ("" if none was given)."""

    url: str
    token: str

    def with_token(self) -> Target:
        """This target, if it has a token; else a `UserError` saying how to give one."""
        if not self.token:
            raise UserError(
                f"no token: export {TOKEN_VARIABLE}=<token> or pass --token "
                "(`outrigger token` mints one)"
            )
        return self


def target_options(
    service: str, url_variable: str, *, token_required: bool = True
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Adds `--url` and `--token` to a command, which receives them as its first argument, a
    `Target`; without a token the command ends at once saying how to give one (exit code 2),
    unless `token_required` is False: then the command calls `Target.with_token()` once it
    knows it will send a request."""
    default_url = f"http://127.0.0.1:{catalog.service(service).port}"

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @click.option(
            "--url",
            envvar=url_variable,
            show_envvar=True,
            default=default_url,
            show_default=True,
            help=f"The {service} service.",
        )
        @click.option(
            "--token",
            envvar=TOKEN_VARIABLE,
            show_envvar=True,
            help="Bearer token with the command's scope (`outrigger token` mints one).",
        )
        @functools.wraps(command)
        def with_target(url: str, token: str | None, **options: Any) -> None:
            target = Target(url, token or "")
            command(target.with_token() if token_required else target, **options)

        return with_target

    return decorate


def echo_json(document: Any) -> None:
    """`document` (dataclasses, UUIDs and datetimes included) as one line of JSON."""
    click.echo(orjson.dumps(document, option=orjson.OPT_UTC_Z).decode())
