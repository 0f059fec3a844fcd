"""`outrigger audit tail|query|verify|export`: the audit log from the command line, via the SDK.

Each command talks to a running audit service (`--url`, else `$OUTRIGGER_AUDIT_URL`, else
http://127.0.0.1:8001) with a bearer token (`--token`, else `$OUTRIGGER_TOKEN`) and prints JSON,
one record per line (`--table`: aligned columns). `verify FILE --public-key KEY` needs neither:
it checks an export offline. A check that fails is one line on stderr and exit code 1; bad input
is one line and exit code 2 (see `outrigger.cli.remote`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from outrigger.cli.remote import ServiceCommands, Target, echo_json, fail, target_options

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from outrigger.clients import AuditRecord, SyncAuditClient
    from outrigger.clients.audit_models import Outcome

URL_VARIABLE = "OUTRIGGER_AUDIT_URL"
DEFAULT_TENANT = "default"
MAX_PAGE = 1000
COLUMNS = (  # heading, width (0: the rest of the line)
    ("INDEX", 8),
    ("TIME", 20),
    ("TYPE", 30),
    ("ACTOR", 16),
    ("ACTION", 12),
    ("OUTCOME", 7),
    ("RESOURCE", 0),
)


def _connect(target: Target) -> SyncAuditClient:
    from outrigger.clients import SyncAuditClient  # the SDK loads when a command runs

    return SyncAuditClient(target.url, token=target.token)


def _time(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a time: give RFC 3339, e.g. 2026-01-31T12:00:00Z or 2026-01-31",
            param=param,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _filters(command: Callable[..., None]) -> Callable[..., None]:
    """The options that choose records: tenant, type, actor, resource, outcome, --table."""
    for decorate in reversed(
        (
            click.option("--tenant", default=DEFAULT_TENANT, show_default=True),
            click.option("--type", "record_type", help="Only records of this type."),
            click.option("--actor", help="Only records of this actor."),
            click.option("--resource", help="Only records about this resource."),
            click.option(
                "--outcome", type=click.Choice(["success", "failure"]), help="Only this outcome."
            ),
            click.option("--table", is_flag=True, help="Aligned columns instead of JSON lines."),
        )
    ):
        command = decorate(command)
    return command


class _Printer:
    """Prints records as JSON lines, or as table rows under one heading."""

    def __init__(self, table: bool) -> None:
        self.table = table
        self.headed = False

    def __call__(self, record: AuditRecord) -> None:
        if not self.table:
            echo_json(record)
            return
        if not self.headed:
            click.echo(_row(heading for heading, _ in COLUMNS))
            self.headed = True
        when = record.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        cells = (record.index, when, record.type, record.actor, record.action, record.outcome)
        click.echo(_row((*map(str, cells), record.resource)))


def _row(cells: Iterable[str]) -> str:
    shown = []
    for text, (_, width) in zip(cells, COLUMNS, strict=True):
        if width and len(text) > width:
            text = text[: width - 1] + "…"
        shown.append(text.ljust(width))
    return "  ".join(shown).rstrip()


@click.group("audit", cls=ServiceCommands)
def commands() -> None:
    """Follow, search, verify and export the audit log."""


@commands.command()
@_filters
@click.option(
    "--last", type=click.IntRange(0, MAX_PAGE), default=10, show_default=True,
    help="Start with this many of the newest records.",
)  # fmt: skip
@click.option(
    "--interval", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
    help="Seconds between two looks for new records.",
)  # fmt: skip
@click.option("--count", type=click.IntRange(1), help="Stop after this many records.")
@target_options("audit", URL_VARIABLE)
def tail(
    target: Target,
    tenant: str,
    record_type: str | None,
    actor: str | None,
    resource: str | None,
    outcome: Outcome | None,
    table: bool,
    last: int,
    interval: float,
    count: int | None,
) -> None:
    """Print the newest records, then each new one as it is recorded.

    Starts with the --last newest (oldest first), then asks every --interval seconds; stops
    after --count records or Ctrl-C."""
    show = _Printer(table)
    with _connect(target) as audit:
        following = audit.follow(
            tenant,
            record_type=record_type,
            actor=actor,
            resource=resource,
            outcome=outcome,
            last=last,
            interval=interval,
        )
        with contextlib.closing(following):
            for seen, record in enumerate(following, start=1):
                show(record)
                if count is not None and seen >= count:
                    return


@commands.command()
@_filters
@click.option("--from", "since", callback=_time, help="Only records from this time (RFC 3339).")
@click.option("--to", "until", callback=_time, help="Only records before this time.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@target_options("audit", URL_VARIABLE)
def query(
    target: Target,
    tenant: str,
    record_type: str | None,
    actor: str | None,
    resource: str | None,
    outcome: Outcome | None,
    table: bool,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    """Print up to --limit matching records, newest first.

    Every filter given must match; --from and --to bound the records' time. Sensitive fields
    are masked."""
    show = _Printer(table)
    with _connect(target) as audit:
        found = audit.query_all(
            tenant,
            record_type=record_type,
            actor=actor,
            resource=resource,
            outcome=outcome,
            since=since,
            until=until,
            page_size=min(limit, MAX_PAGE),
        )
        with contextlib.closing(found):
            for seen, record in enumerate(found, start=1):
                show(record)
                if seen >= limit:
                    return


def _public_key(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The verifier key given as text, or the text of the file it names."""
    if value is None:
        return None
    from outrigger.notes import NoteError, NoteVerifier

    key = value
    with contextlib.suppress(OSError):
        if Path(value).is_file():
            key = Path(value).read_text().strip()
    try:
        NoteVerifier.parse(key)
    except NoteError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    return key


@commands.command()
@click.argument("file", required=False, type=click.File("rb"))
@click.option(
    "--public-key", metavar="KEY", callback=_public_key,
    help="The service's verifier key (<name>+<hash>+<base64>), or a file holding it: check "
    "FILE, an export, offline with it.",
)  # fmt: skip
@click.option("--tenant", help=f"The tenant to verify (default {DEFAULT_TENANT}).")
@target_options("audit", URL_VARIABLE, token_required=False)
def verify(
    target: Target, file: IO[bytes] | None, public_key: str | None, tenant: str | None
) -> None:
    """Check a tenant's log on the service, or an export FILE here with --public-key.

    Without FILE, the service recomputes the tenant's tree from its records and checks its
    checkpoints. With FILE (an export; "-" reads stdin) it is checked here, with no service and
    no token: every leaf's hash, every inclusion proof and the checkpoint's signature, against
    the key given (the `verifier_key` of the service's checkpoints, got from a source you
    trust). Prints what was checked; exit code 1 names the first record or line that fails."""
    if file is None:
        if public_key is not None:
            raise click.UsageError("--public-key checks an export: give its FILE too")
        _verify_on_service(target.with_token(), tenant or DEFAULT_TENANT)
        return
    if public_key is None:
        raise click.UsageError("give --public-key KEY to check FILE (the service's verifier key)")
    from outrigger.clients import verify_export

    result = verify_export(file, public_key)
    echo_json(result)
    if not result.ok:
        fail(f"{file.name} line {result.line}: {result.reason}")
    if tenant is not None and result.tenant != tenant:
        fail(f"{file.name} is an export of tenant {result.tenant!r}, not {tenant!r}")


def _verify_on_service(target: Target, tenant: str) -> None:
    with _connect(target) as audit:
        verification = audit.verify(tenant)
    echo_json(verification)
    mismatch = verification.mismatch
    if mismatch is not None:
        where = f"record {mismatch.index}" if mismatch.index is not None else "the tree"
        fail(f"tenant {tenant!r} does not verify: {where}: {mismatch.reason}")


@commands.command()
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
@click.option("--from", "since", callback=_time, help="Records from this time (RFC 3339).")
@click.option("--to", "until", callback=_time, help="Records before this time.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the export to this file (whole, or not at all) instead of stdout.",
)  # fmt: skip
@target_options("audit", URL_VARIABLE)
def export(
    target: Target,
    tenant: str,
    since: datetime | None,
    until: datetime | None,
    output: Path | None,
) -> None:
    """Write the tenant's records, with their proofs, as NDJSON.

    The first line is a checkpoint, then one line per record recorded in [--from, --to), with
    its inclusion proof against that checkpoint: what `outrigger audit verify FILE` checks."""
    with _connect(target) as audit:
        lines = audit.export_ndjson(tenant, since=since, until=until)
        with contextlib.closing(lines), _destination(output) as out:
            for line in lines:
                out.write(line)
                out.write("\n")


@contextlib.contextmanager
def _destination(output: Path | None) -> Iterator[IO[str]]:
    """stdout, or a file that appears under its name only once all of it was written."""
    if output is None:
        yield sys.stdout
        return
    partial = output.with_name(f".{output.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            yield out
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
