"""What a command tells its user when it stops: one line on stderr, never a traceback.

`UserError` is a mistake the user can fix (a setting, an argument, a service name, a port in use,
no token): exit code 2. `CommandFailed` is anything else that stopped the command on purpose (a
database or service that does not answer, or refuses): exit code 1. Both print one line,
`outrigger: <what went wrong and what to do>`. Ctrl-C ends a command quietly with exit code 130.
"""

from __future__ import annotations

from typing import IO, Any
from urllib.parse import urlsplit

import click

from outrigger import catalog
from outrigger.errors import NotFound

EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class CommandFailed(click.ClickException):
    exit_code = EXIT_FAILED

    def show(self, file: IO[Any] | None = None) -> None:
        message = " ".join(self.format_message().splitlines())
        click.echo(f"outrigger: {message}", file=file, err=True)


class UserError(CommandFailed):
    exit_code = EXIT_USER_ERROR


def known_service(name: str) -> catalog.ServiceInfo:
    """The service called `name`; a `UserError` listing them when there is none."""
    try:
        return catalog.service(name)
    except NotFound as exc:
        raise UserError(exc.detail) from None


def without_password(url: str) -> str:
    """`url` with the password of its user info shown as `***` (for banners and messages)."""
    netloc = urlsplit(url).netloc
    userinfo, at, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not (at and colon):
        return url
    return url.replace(netloc, f"{user}:***@{host}", 1)
