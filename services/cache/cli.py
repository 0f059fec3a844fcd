"""`outrigger cache get|put|delete|invalidate|lock`: the cache from the command line (via the SDK).

Each command talks to a running cache (`--url`, else `$OUTRIGGER_CACHE_URL`, else
http://127.0.0.1:8003) with a bearer token (`--token`, else `$OUTRIGGER_TOKEN`). `get` prints the
stored bytes as they are (`--json`: the entry as JSON); the other commands print what the cache
answered as one line of JSON. A miss, a lock held elsewhere or a refused token is one line on
stderr and exit code 1; bad input is one line and exit code 2 (see `outrigger.cli.remote`).
"""

from __future__ import annotations

import base64
import sys
from typing import TYPE_CHECKING

import click

from outrigger.cli.remote import ServiceCommands, Target, echo_json, fail, target_options

if TYPE_CHECKING:
    from outrigger.clients import CachedValue, SyncCacheClient

URL_VARIABLE = "OUTRIGGER_CACHE_URL"
SECONDS = click.FloatRange(min=0, min_open=True)


def _connect(target: Target) -> SyncCacheClient:
    from outrigger.clients import SyncCacheClient  # the SDK loads when a command runs

    return SyncCacheClient(target.url, token=target.token)


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


@click.group("cache", cls=ServiceCommands)
def commands() -> None:
    """Read, write, invalidate and lock through the cache."""


@commands.command()
@click.argument("namespace")
@click.argument("key")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the entry (value, version, tags, ...) as JSON."
)
@target_options("cache", URL_VARIABLE)
def get(target: Target, namespace: str, key: str, as_json: bool) -> None:
    """Print the value of KEY in NAMESPACE, byte for byte; exit code 1 on a miss."""
    with _connect(target) as cache:
        found = cache.get(namespace, key)
    if found is None:
        fail(
            f"no fresh entry {key!r} in namespace {namespace!r}: it was never stored, expired, "
            "or was deleted or invalidated"
        )
    if as_json:
        echo_json(_entry(found))
        return
    out = sys.stdout.buffer
    out.write(found.value)
    if out.isatty() and not found.value.endswith(b"\n"):
        out.write(b"\n")
    out.flush()


def _entry(found: CachedValue) -> dict[str, object]:
    try:
        value, encoding = found.value.decode(), "utf-8"
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(found.value).decode(), "base64"
    return {
        "key": found.key,
        "value": value,
        "encoding": encoding,
        "content_type": found.content_type,
        "version": found.version,
        "max_age": found.max_age,
        "tags": sorted(found.tags),
    }


@commands.command()
@click.argument("namespace")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--ttl", type=SECONDS, help="Seconds it stays fresh; default: the namespace's.")
@click.option(
    "--tag", "tags", multiple=True, help="A tag to invalidate it by, e.g. stream:order-7 (repeat)."
)
@click.option(
    "--content-type",
    help="Default: text/plain; charset=utf-8 for VALUE, application/octet-stream for stdin.",
)
@target_options("cache", URL_VARIABLE)
def put(
    target: Target,
    namespace: str,
    key: str,
    value: str | None,
    ttl: float | None,
    tags: tuple[str, ...],
    content_type: str | None,
) -> None:
    """Store VALUE (or stdin, without VALUE or with "-") under KEY in NAMESPACE; prints the
    entry stored, with its version."""
    body: str | bytes
    if value is None or value == "-":
        stdin = sys.stdin.buffer
        if stdin.isatty():
            raise click.UsageError("give VALUE, or pipe the value on stdin")
        body = stdin.read()
    else:
        body = value
    with _connect(target) as cache:
        stored = cache.put(namespace, key, body, ttl=ttl, tags=tags, content_type=content_type)
    echo_json(stored)


@commands.command()
@click.argument("namespace")
@click.argument("key")
@target_options("cache", URL_VARIABLE)
def delete(target: Target, namespace: str, key: str) -> None:
    """Remove KEY from NAMESPACE; exit code 1 if there was no entry."""
    with _connect(target) as cache:
        deleted = cache.delete(namespace, key)
    if not deleted:
        fail(f"no entry {key!r} in namespace {namespace!r}: nothing was deleted")


@commands.command()
@click.argument("namespace")
@click.option("--tag", "tags", multiple=True, help="Remove the entries with this tag (repeat).")
@click.option("--prefix", help='Remove the entries whose key starts with it ("": all of them).')
@target_options("cache", URL_VARIABLE)
def invalidate(target: Target, namespace: str, tags: tuple[str, ...], prefix: str | None) -> None:
    """Remove the entries of NAMESPACE carrying any --tag, or under --prefix; prints how many."""
    if bool(tags) == (prefix is not None):
        raise click.UsageError("give --tag (repeatable) or --prefix, one of them")
    with _connect(target) as cache:
        removed = cache.invalidate(namespace, tags=tags or None, prefix=prefix)
    echo_json({"removed": removed})


@commands.command()
@click.argument("resource")
@click.option("--ttl", type=SECONDS, default=30.0, show_default=True, help="Lease, in seconds.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for the holder to let go.",
)
@click.option("--renew", metavar="TOKEN", help="Extend TOKEN's lease to --ttl from now instead.")
@click.option("--release", metavar="TOKEN", help="Release the lock TOKEN holds instead.")
@target_options("cache", URL_VARIABLE)
def lock(
    target: Target,
    resource: str,
    ttl: float,
    wait: float,
    renew: str | None,
    release: str | None,
) -> None:
    """Acquire the fenced lock of RESOURCE for --ttl seconds; prints its token and fence.

    Writes guarded by the lock carry the fence, so that whatever they write to can refuse a
    holder whose lease ran out. Nothing renews the lease: renew it with --renew TOKEN before it
    runs out, and release it with --release TOKEN. Exit code 1 while another holder has it.
    """
    if renew is not None and release is not None:
        raise click.UsageError("give --renew or --release, not both")
    with _connect(target) as cache:
        if release is not None:
            cache.release(resource, release)
            return
        if renew is not None:
            held = cache.renew(resource, renew, ttl_ms=max(1, _milliseconds(ttl)))
        else:
            ttl_ms = max(1, _milliseconds(ttl))
            held = cache.acquire(resource, ttl_ms=ttl_ms, wait_ms=_milliseconds(wait))
    echo_json(held)
