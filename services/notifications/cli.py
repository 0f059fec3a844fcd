"""`outrigger notifications publish|tail`: the notifications hub from the command line, via the SDK.

Each command talks to a running hub (`--url`, else `$OUTRIGGER_NOTIFICATIONS_URL`, else
http://127.0.0.1:8004) with a bearer token (`--token`, else `$OUTRIGGER_TOKEN`). `publish` prints
where the message landed as one line of JSON; `tail` prints every event as one line of JSON,
`{"id", "event", "data"}` (a reset too, as `"event": "reset"`), reconnecting by itself, until
`--count` events or Ctrl-C. A refused token or channel, or a hub that does not answer, is one
line on stderr and exit code 1; bad input is one line and exit code 2 (see `outrigger.cli.remote`).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from outrigger.cli.remote import ServiceCommands, Target, echo_json, target_options

if TYPE_CHECKING:
    from outrigger.clients import Received, SyncNotificationsClient

URL_VARIABLE = "OUTRIGGER_NOTIFICATIONS_URL"


def _connect(target: Target) -> SyncNotificationsClient:
    from outrigger.clients import SyncNotificationsClient  # the SDK loads when a command runs

    return SyncNotificationsClient(target.url, token=target.token)


@click.group("notifications", cls=ServiceCommands)
def commands() -> None:
    """Publish to channels of the notifications hub and follow them."""


@commands.command()
@click.argument("channel")
@click.argument("event")
@click.argument("data", required=False)
@click.option(
    "--id",
    "message_id",
    help="Your id for the message: publishing it again to CHANNEL (within a day) sends nothing.",
)
@target_options("notifications", URL_VARIABLE)
def publish(
    target: Target, channel: str, event: str, data: str | None, message_id: str | None
) -> None:
    """Publish DATA, a JSON value (or stdin, without DATA or with "-"), as EVENT on CHANNEL;
    prints its history id, and whether it was a duplicate of --id."""
    if data is None or data == "-":
        if sys.stdin.isatty():
            raise click.UsageError("give DATA, or pipe the JSON on stdin")
        data = sys.stdin.read()
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="DATA") from None
    with _connect(target) as hub:
        published = hub.publish(channel, event, value, id=message_id)
    echo_json(published)


@commands.command()
@click.argument("channels", metavar="CHANNEL...", nargs=-1, required=True)
@click.option("--since-earliest", is_flag=True, help="Start with every message history keeps.")
@click.option("--last-event-id", help="Start after this history id (the id of a printed event).")
@click.option("--count", type=click.IntRange(1), help="Stop after this many events.")
@target_options("notifications", URL_VARIABLE)
def tail(
    target: Target,
    channels: tuple[str, ...],
    since_earliest: bool,
    last_event_id: str | None,
    count: int | None,
) -> None:
    """Print each event of CHANNEL... as one line of JSON as it is published.

    A CHANNEL may be a pattern: `*` stands for one segment, a final `>` for the rest
    (`orders.*`, `jobs.>`). A dropped connection is resumed where it stopped; an event `reset`
    says history no longer reached back that far (messages were missed)."""
    if since_earliest and last_event_id is not None:
        raise click.UsageError("give --since-earliest or --last-event-id, not both")
    with _connect(target) as hub:
        following = hub.subscribe(
            *channels, last_event_id=last_event_id, since_earliest=since_earliest
        )
        with contextlib.closing(following):
            for seen, received in enumerate(following, start=1):
                echo_json(_line(received))
                if count is not None and seen >= count:
                    return


def _line(received: Received) -> dict[str, Any]:
    """An event as the wire has it: `id`, `event`, `data`."""
    from outrigger.clients import Reset

    if isinstance(received, Reset):
        data = {"reason": received.reason, "resume_after": received.resume_after}
        return {"id": received.id, "event": "reset", "data": data}
    return {"id": received.id, "event": received.event, "data": received.data}
