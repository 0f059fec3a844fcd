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
    """Turns the errors a user can fix into one line on stderr, never a traceback.

    Each installed service's command group (`services.<package>.cli.commands`) joins when the
    command line is read, not when this module is imported, so a service's `cli` may import
    from `outrigger.cli` without a cycle.
    """

    services_added = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_services()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._add_services()
        return super().get_command(ctx, cmd_name)

    def _add_services(self) -> None:
        if self.services_added:
            return
        self.services_added = True
        for info in catalog.installed():
            try:
                commands = importlib.import_module(f"{info.module}.cli").commands
            except ModuleNotFoundError:
                continue
            self.add_command(commands)

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
