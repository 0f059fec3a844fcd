"""`outrigger events append|read|tail`: the event store from the command line, through the SDK.

Each command talks to a running event store (`--url`, else `$OUTRIGGER_EVENT_STORE_URL`, else
http://127.0.0.1:8002) with a bearer token (`--token`, else `$OUTRIGGER_TOKEN`) and prints JSON,
one event per line for `read` and `tail`. Failures are one line on stderr (exit code 2 for bad
input, whether click or the service refuses it; 1 for anything else): see `outrigger.cli.remote`.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from outrigger.cli.remote import ServiceCommands, Target, echo_json, target_options

if TYPE_CHECKING:
    from outrigger.clients import ExpectedVersion, SyncEventStoreClient

URL_VARIABLE = "OUTRIGGER_EVENT_STORE_URL"
STATES: dict[str, ExpectedVersion] = {
    state: state for state in ("any", "no_stream", "stream_exists")
}
READ_PAGE = 1000


def _connect(target: Target) -> SyncEventStoreClient:
    from outrigger.clients import SyncEventStoreClient  # the SDK loads when a command runs

    return SyncEventStoreClient(target.url, token=target.token)


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


@click.group("events", cls=ServiceCommands)
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
@target_options("event-store", URL_VARIABLE)
def append(
    target: Target,
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
    with _connect(target) as events:
        echo_json(events.append(stream_id, [event], expected_version=expected_version))


@commands.command()
@click.argument("stream_id")
@click.option("--from-version", type=click.IntRange(0), help="Start at this version.")
@click.option("--backward", is_flag=True, help="Newest first.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@target_options("event-store", URL_VARIABLE)
def read(
    target: Target, stream_id: str, from_version: int | None, backward: bool, limit: int
) -> None:
    """Print up to LIMIT events of STREAM_ID, one JSON object per line."""
    printed = 0
    with _connect(target) as events:
        while printed < limit:
            page = events.read_stream(
                stream_id,
                from_version=from_version,
                direction="backward" if backward else "forward",
                limit=min(limit - printed, READ_PAGE),
            )
            for event in page.events:
                echo_json(event)
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
@target_options("event-store", URL_VARIABLE)
def tail(
    target: Target,
    after: int,
    category: str | None,
    event_type: str | None,
    stream_id: str | None,
    count: int | None,
) -> None:
    """Print the log's events from AFTER, then new ones live; stops after --count or Ctrl-C."""
    with _connect(target) as events:
        following = events.subscribe(
            after=after, category=category, event_type=event_type, stream_id=stream_id
        )
        with contextlib.closing(following):
            for seen, event in enumerate(following, start=1):
                echo_json(event)
                if count is not None and seen >= count:
                    return
