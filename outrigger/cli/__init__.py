"""The `outrigger` command: `dev`, `serve`, `migrate`, `token`, and each service's helpers."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from outrigger import __version__, catalog
from outrigger.cli.migrate import migrate
from outrigger.cli.serve import dev, serve
from outrigger.cli.token import token
from outrigger.errors import OutriggerError
from outrigger.settings import SettingsError

EXIT_BAD_SETTINGS = 2


class _Main(click.Group):
    """Turns the errors a user can fix into one line on stderr, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            click.echo(f"outrigger: {exc}", err=True)
            sys.exit(EXIT_BAD_SETTINGS)
        except OutriggerError as exc:
            click.echo(f"outrigger: {exc.detail}", err=True)
            sys.exit(1)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="outrigger")
def main() -> None:
    """Outrigger: infrastructure sidecar services."""


main.add_command(dev)
main.add_command(serve)
main.add_command(migrate)
main.add_command(token)

for _info in catalog.installed():
    try:
        _commands = importlib.import_module(f"{_info.module}.cli").commands
    except ModuleNotFoundError:
        continue
    main.add_command(_commands)
