"""Records: write (with receipts), query, read one, reveal one."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from outrigger.http import ServiceRoute, problem_responses
from services.audit.api.context import From, Reader, Revealer, Service, Source, Tenant, To, Writer
from services.audit.api.models import (
    TEXT_PATTERN,
    ReceiptOut,
    ReceiptsOut,
    RecordOut,
    RecordPageOut,
    RecordsBody,
    RecordsIn,
    RevealIn,
)
from services.audit.domain.models import DEFAULT_TENANT, RecordFilter
from services.audit.domain.rules import MAX_INDEX, MAX_PAGE_LIMIT, TOKEN_PATTERN

router = APIRouter(prefix="/v1/records", tags=["records"], route_class=ServiceRoute)

# the last record's index, and on a page of a time window its time (microseconds since year 1)
CURSOR_PATTERN = r"^[0-9a-f]{1,14}(-[0-9a-f]{1,15})?$"
YEAR_1 = datetime.min.replace(tzinfo=UTC)
MAX_MICROSECONDS = (datetime.max.replace(tzinfo=UTC) - YEAR_1) // timedelta(microseconds=1)
# `:path`: an id may hold `/` (sent as `%2F`, which the server decodes before routing)
RecordId = Annotated[
    str,
    Path(
        pattern=TOKEN_PATTERN,
        examples=["order-7"],
        description="The record's id, percent-encoded: any id `POST /v1/records` accepts, "
        "`/` included.",
    ),
]
NOT_FOUND = "No record with this id (from this source)."
AMBIGUOUS = "Several sources sent a record with this id: name one with `source`."
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ReceiptsOut, "description": "Every record was stored before: its receipts."},
    **problem_responses({413: "`data` of a record is larger than 64 KiB of JSON."}),
}


@router.post("", status_code=201, response_model=ReceiptsOut, responses=WRITE_RESPONSES)
async def write(body: RecordsBody, service: Service, _: Writer) -> Response:
    """Stores one record, or `{"records": [...]}` (1-1,000, all or nothing), and answers a
    receipt per record with the first checkpoint covering it. A retried record (same `source`
    and `id`) is not stored again: its first receipt comes back, `duplicate: true`."""
    records = body.records if isinstance(body, RecordsIn) else [body]
    receipts = await service.record([record.to_record() for record in records])
    key = service.checkpoints.verifier_key
    out = ReceiptsOut(receipts=[ReceiptOut.of(receipt, key) for receipt in receipts])
    status = 200 if all(receipt.duplicate for receipt in receipts) else 201
    return Response(out.model_dump_json(), status, media_type="application/json")


@router.get("")
async def query(
    service: Service,
    _: Reader,
    since: From = None,
    until: To = None,
    tenant: Tenant = DEFAULT_TENANT,
    type: Annotated[str | None, Query(pattern=TOKEN_PATTERN)] = None,
    actor: Annotated[str | None, Query(pattern=TEXT_PATTERN)] = None,
    resource: Annotated[str | None, Query(pattern=TEXT_PATTERN)] = None,
    outcome: Literal["success", "failure"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = 100,
    cursor: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page (opaque)."),
    ] = None,
) -> RecordPageOut:
    """A page of the tenant's records matching every filter given, newest first; sensitive
    fields masked. Follow `next_cursor` for the next page."""
    index, time = (None, None) if cursor is None else _position(cursor)
    where = RecordFilter(
        tenant=tenant,
        type=type,
        actor=actor,
        resource=resource,
        outcome=outcome,
        since=since,
        until=until,
        before=index,
        before_time=time,
        limit=limit,
    )
    page = await service.query(where)
    following = _cursor(page.next_before, page.next_before_time)
    return RecordPageOut.model_construct(
        records=[RecordOut.of(stored) for stored in page.records], next_cursor=following
    )


def _position(cursor: str) -> tuple[int, datetime | None]:
    """The index and time (if any) a cursor names, clamped to their ranges."""
    index, _, time = cursor.partition("-")
    before = min(int(index, 16), MAX_INDEX + 1)
    if not time:
        return before, None
    return before, YEAR_1 + timedelta(microseconds=min(int(time, 16), MAX_MICROSECONDS))


def _cursor(index: int | None, time: datetime | None) -> str | None:
    if index is None:
        return None
    if time is None:
        return format(index, "x")
    return f"{index:x}-{(time - YEAR_1) // timedelta(microseconds=1):x}"


@router.get("/{id:path}", responses=problem_responses({404: NOT_FOUND, 409: AMBIGUOUS}))
async def read(id: RecordId, service: Service, _: Reader, source: Source = None) -> RecordOut:
    """The record with this id, sensitive fields masked."""
    return RecordOut.of(await service.get(id, source))


@router.post("/{id:path}:reveal", responses=problem_responses({404: NOT_FOUND, 409: AMBIGUOUS}))
async def reveal(
    id: RecordId, body: RevealIn, service: Service, caller: Revealer, source: Source = None
) -> RecordOut:
    """The record with its sensitive fields in clear. The reveal is recorded in the same
    tenant's log first (type `audit.record.revealed`, with `reason`)."""
    return RecordOut.of(await service.reveal(id, source, body.reason, caller))
