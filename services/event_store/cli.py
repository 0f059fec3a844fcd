"""`outrigger events append|read|tail`: the event store from the command line.

Each command talks to a running event store (`--url`, default http://127.0.0.1:8002) with a
bearer token (`--token`, default `$OUTRIGGER_TOKEN`; `outrigger token` mints one) and prints
JSON, one event per line for `read` and `tail`. Bad input, whether click or the service refuses
it, is one line on stderr and exit code 2; any other failure is one line and exit code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson

from outrigger.clients import EventStoreClient
from outrigger.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from outrigger.clients import ExpectedVersion

DEFAULT_URL = "http://127.0.0.1:8002"
STATES: dict[str, ExpectedVersion] = {
    state: state for state in ("any", "no_stream", "stream_exists")
}
EXIT_BAD_INPUT = 2


def _bad_input(message: str) -> NoReturn:
    click.echo(f"outrigger: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _connection(command: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--url", default=DEFAULT_URL, show_default=True, help="The event store.")
    @click.option("--token", envvar="OUTRIGGER_TOKEN", help="Bearer token [env OUTRIGGER_TOKEN].")
    @functools.wraps(command)
    def with_client(url: str, token: str | None, **options: Any) -> None:
        try:
            asyncio.run(_with(EventStoreClient(url, token=token), command, options))
        except InvalidInput as exc:
            _bad_input(exc.detail)

    return with_client


async def _with(
    client: EventStoreClient,
    command: Callable[..., Coroutine[Any, Any, None]],
    options: dict[str, Any],
) -> None:
    async with client:
        await command(client, **options)


def _echo(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_UTC_Z).decode())


def _json(_ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    if value == "-":
        value = sys.stdin.read()
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param=param) from None


def _expected(_ctx: click.Context, param: click.Parameter, value: str) -> ExpectedVersion:
    if value.isdecimal():
        return int(value)
    if value in STATES:
        return STATES[value]
    raise click.BadParameter(
        f'expected_version must be "any", "no_stream", "stream_exists" or a version >= 0, '
        f"not {value!r}",
        param=param,
    )


class _Events(click.Group):
    """A command given bad arguments says why in one line (not the usage text), exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _bad_input(exc.format_message())


@click.group("events", cls=_Events)
def commands() -> None:
    """Append to, read and follow the event store."""


@commands.command()
@click.argument("stream_id")
@click.option("--type", "event_type", required=True, help="The event type.")
@click.option(
    "--data", required=True, callback=_json, help='The event data, as JSON ("-": read stdin).'
)
@click.option("--metadata", callback=_json, help="The event metadata, as a JSON object.")
@click.option("--id", "event_id", help="The event id (a UUID); retries with it are replays.")
@click.option(
    "--expected-version",
    default="any",
    show_default=True,
    callback=_expected,
    help='"any", "no_stream", "stream_exists" or the version of the last event.',
)
@_connection
async def append(
    client: EventStoreClient,
    stream_id: str,
    event_type: str,
    data: Any,
    metadata: Any,
    event_id: str | None,
    expected_version: ExpectedVersion,
) -> None:
    """Append one event to STREAM_ID; prints where it landed."""
    event: dict[str, Any] = {"type": event_type, "data": data}
    if metadata is not None:
        event["metadata"] = metadata
    if event_id is not None:
        event["id"] = event_id
    _echo(await client.append(stream_id, [event], expected_version=expected_version))


@commands.command()
@click.argument("stream_id")
@click.option("--from-version", type=click.IntRange(0), help="Start at this version.")
@click.option("--backward", is_flag=True, help="Newest first.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@_connection
async def read(
    client: EventStoreClient, stream_id: str, from_version: int | None, backward: bool, limit: int
) -> None:
    """Print up to LIMIT events of STREAM_ID, one JSON object per line."""
    printed = 0
    while printed < limit:
        page = await client.read_stream(
            stream_id,
            from_version=from_version,
            direction="backward" if backward else "forward",
            limit=min(limit - printed, 1000),
        )
        for event in page.events:
            _echo(event)
        printed += len(page.events)
        from_version = page.next_version
        if from_version is None:
            return


@commands.command()
@click.option("--after", type=click.IntRange(0), default=0, help="Start after this position.")
@click.option("--category", help="Only streams <category>-….")
@click.option("--type", "event_type", help="Only events of this type.")
@click.option("--stream", "stream_id", help="Only this stream (from its first event).")
@click.option("--count", type=click.IntRange(1), help="Stop after this many events.")
@_connection
async def tail(
    client: EventStoreClient,
    after: int,
    category: str | None,
    event_type: str | None,
    stream_id: str | None,
    count: int | None,
) -> None:
    """Print the log's events from AFTER, then new ones live; stops after --count or Ctrl-C."""
    seen = 0
    events = client.subscribe(
        after=after, category=category, event_type=event_type, stream_id=stream_id
    )
    async with contextlib.aclosing(events):
        async for event in events:
            _echo(event)
            seen += 1
            if count is not None and seen >= count:
                return
