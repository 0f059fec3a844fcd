"""The `outrigger` command: `dev`, `serve`, `migrate`, `token`, and each service's commands.

Starting it costs little: a command imports FastAPI, uvicorn, alembic or a driver only when it
runs, and a service's commands (`outrigger events …`) are imported only when called. Whatever the
user can fix (a setting, an argument, a service name, a busy port) is one line on stderr and exit
code 2 (`outrigger.cli.output`).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import click

from outrigger import __version__, catalog
from outrigger.cli import migrate, run, token
from outrigger.cli.output import EXIT_INTERRUPTED, CommandFailed, UserError
from outrigger.errors import OutriggerError, SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """Turns the errors a user sees into one line (`UserError`, `CommandFailed`)."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "outrigger"
        raise UserError(f"{exc.format_message().rstrip('.')}; see '{where} --help'") from None
    except SettingsError as exc:
        raise UserError(str(exc)) from None
    except OutriggerError as exc:
        raise CommandFailed(exc.detail) from None
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


class _Main(click.Group):
    """The built-in commands, plus each installed service's group, imported when it is called."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_service_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        info = _service_commands().get(cmd_name)
        return info.commands() if info else super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Lists the services' commands by name, without importing them."""
        services = _service_commands()
        limit = formatter.width - 6 - max(map(len, self.list_commands(ctx)))
        rows = [
            (name, f"The {services[name].name} service (outrigger {name} --help).")
            if name in services
            else (name, self.commands[name].get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _service_commands() -> dict[str, catalog.ServiceInfo]:
    return {
        info.command: info
        for info in catalog.installed()
        if info.command is not None and info.has_commands
    }


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="outrigger")
def main() -> None:
    """Outrigger: infrastructure sidecar services."""


# modules, not their commands, are imported here: `outrigger.cli.serve` is the serving module
main.add_command(run.dev)
main.add_command(run.serve)
main.add_command(migrate.migrate)
main.add_command(token.token)
