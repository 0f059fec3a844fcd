"""`outrigger plugins list|run|job|reload`: the plugin executor from the command line, via the SDK.

Each command talks to a running executor (`--url`, else `$OUTRIGGER_PLUGIN_EXECUTOR_URL`, else
http://127.0.0.1:8005) with a bearer token (`--token`, else `$OUTRIGGER_TOKEN`). A plugin's input
is a JSON object: `--input '{…}'`, `--input-file PATH`, or stdin (`-`, or nothing on a pipe).

Exit codes differ from the other command groups on purpose, so that a script can tell a plugin's
failure from a failure to run it: 0 when the run ended `ok` (or there was no run to end), 1 when
it ended otherwise (`error`, `timeout`, `memory_limit`, …; the reason and detail on stderr), 2
for everything else: bad arguments or input, a refused token, an unknown plugin, a service that
does not answer or cannot take the run. Every failure is one line on stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from outrigger.cli.output import CommandFailed, UserError
from outrigger.cli.remote import ServiceCommands, Target, echo_json, fail, target_options
from outrigger.errors import OutriggerError

if TYPE_CHECKING:
    from outrigger.clients import Job, PluginInfo, PluginList, RunResult, SyncPluginsClient

URL_VARIABLE = "OUTRIGGER_PLUGIN_EXECUTOR_URL"
DIGEST_SHOWN = 12  # hex digits of a digest in the table, as git shows a commit
SECONDS = click.FloatRange(min=0, min_open=True)


class NotRun(CommandFailed):
    """The service could not run the command (refused it, or did not answer): exit code 2,
    keeping 1 for a run that ended without a result."""

    exit_code = UserError.exit_code


class PluginCommands(ServiceCommands):
    """`ServiceCommands` with every error the service answers, or its silence, as exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OutriggerError as exc:
            raise NotRun(exc.detail) from None


def _connect(target: Target) -> SyncPluginsClient:
    from outrigger.clients import SyncPluginsClient  # the SDK loads when a command runs

    return SyncPluginsClient(target.url, token=target.token)


@click.group("plugins", cls=PluginCommands)
def commands() -> None:
    """List, reload and run the plugin executor's plugins."""


def _input_options(command: Any) -> Any:
    """`[-]`, `--input JSON`, `--input-file PATH`: where a plugin's input comes from."""
    for decorate in reversed(
        (
            click.argument("stdin", metavar="[-]", required=False),
            click.option("--input", "text", metavar="JSON", help="The input, a JSON object."),
            click.option(
                "--input-file",
                type=click.File("rb"),
                metavar="PATH",
                help='A file holding the input ("-": stdin).',
            ),
        )
    ):
        command = decorate(command)
    return command


def _input(stdin: str | None, text: str | None, file: Any) -> dict[str, Any]:
    """The input, from the one place given; a usage error for none, two, or not a JSON object."""
    if stdin is not None and stdin != "-":
        raise click.UsageError(f"unexpected argument {stdin!r}: give the input with --input")
    given = [stdin is not None, text is not None, file is not None]
    if sum(given) > 1:
        raise click.UsageError("give the input once: --input, --input-file or - (stdin)")
    if text is not None:
        raw: str | bytes = text
        where = "--input"
    elif file is not None:
        raw, where = file.read(), "--input-file"
    else:
        if stdin is None and sys.stdin.isatty():
            raise click.UsageError("give the input: --input JSON, --input-file PATH or - (stdin)")
        raw, where = sys.stdin.buffer.read(), "stdin"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=where) from None
    if not isinstance(value, dict):
        raise click.BadParameter("the input must be a JSON object", param_hint=where)
    return value


@commands.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the whole list (schemas too) as JSON.")
@target_options("plugin-executor", URL_VARIABLE)
def list_plugins(target: Target, as_json: bool) -> None:
    """Print the loaded plugins with their versions, digests and limits.

    With the scope plugins:admin, also the folders that could not be loaded, and why."""
    with _connect(target) as executor:
        listed = executor.plugins()
    _show(listed, as_json=as_json)


@commands.command()
@click.option("--json", "as_json", is_flag=True, help="Print the whole list (schemas too) as JSON.")
@target_options("plugin-executor", URL_VARIABLE)
def reload(target: Target, as_json: bool) -> None:
    """Rescan the plugin folder and print the new list.

    Needs the scope plugins:admin. The list is printed as `list` prints it, with the folders
    that could not be loaded; runs under way end with the plugin they started with."""
    with _connect(target) as executor:
        listed = executor.reload()
    _show(listed, as_json=as_json)


@commands.command()
@click.argument("name")
@_input_options
@click.option("--full", is_flag=True, help="Print the whole answer: reason, detail, usage, …")
@target_options("plugin-executor", URL_VARIABLE)
def run(
    target: Target, name: str, stdin: str | None, text: str | None, input_file: Any, full: bool
) -> None:
    """Run plugin NAME on the input and print its result as JSON.

    Exit code 1 when the run ended without a result (timeout, error, memory_limit, …): its
    reason and detail are on stderr."""
    payload = _input(stdin, text, input_file)
    with _connect(target) as executor:
        ran = executor.run(name, payload)
    if full:
        echo_json(ran)
    elif ran.ok:
        echo_json(ran.result)
    if not ran.ok:
        fail(_ended(name, ran))


@commands.command()
@click.argument("name")
@_input_options
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Submitting again with KEY answers the same job instead of queueing another.",
)
@click.option("--wait", is_flag=True, help="Wait until the job is done and print it as JSON.")
@click.option(
    "--timeout",
    type=SECONDS,
    default=300.0,
    show_default=True,
    help="With --wait: seconds to wait at most (then exit code 2, the job goes on).",
)
@target_options("plugin-executor", URL_VARIABLE)
def job(
    target: Target,
    name: str,
    stdin: str | None,
    text: str | None,
    input_file: Any,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Queue a run of plugin NAME on the input and print the job's id.

    With --wait, print the job once done, as JSON (exit code 1 when it ended without a
    result, its reason on stderr). The job's progress and result are also published on the
    notifications channel jobs.<id> (`outrigger notifications tail jobs.<id>`)."""
    payload = _input(stdin, text, input_file)
    with _connect(target) as executor:
        queued = executor.submit(name, payload, idempotency_key=idempotency_key)
        if not wait:
            click.echo(queued.id)
            return
        done = executor.wait(queued.id, timeout=timeout)
    echo_json(done)
    if not done.ok:
        fail(_ended(name, done))


def _ended(name: str, ended: RunResult | Job) -> str:
    said = f": {ended.detail}" if ended.detail else ""
    return f"{name} ended with {ended.reason}{said}"


def _show(listed: PluginList, *, as_json: bool) -> None:
    if as_json:
        echo_json(listed)
        return
    rows = [("NAME", "VERSION", "DIGEST", "LIMITS")]
    rows += [
        (plugin.name, plugin.version, plugin.digest[:DIGEST_SHOWN], _limits(plugin))
        for plugin in listed.plugins
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[3]]))
    for problem in listed.problems or ():
        click.echo(f"not loaded: {problem.folder}: {problem.detail}")


def _limits(plugin: PluginInfo) -> str:
    limits = plugin.limits
    return (
        f"cpu {limits.cpu_seconds:g} s, memory {limits.memory_mib} MiB, "
        f"wall {limits.wall_seconds:g} s, output {limits.output_kib} KiB"
    )
