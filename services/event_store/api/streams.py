"""Streams: append, read, describe, set metadata, delete."""

from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from outrigger.auth import Scopes, require_scope
from outrigger.http import TemplateRoute
from services.event_store.api.context import (
    EventStoreService,
    Reader,
    Service,
    StreamId,
    Writer,
)
from services.event_store.api.models import (
    AppendIn,
    AppendOut,
    EventOut,
    MetadataIn,
    StreamInfoOut,
    StreamPageOut,
    expected_version_query,
)
from services.event_store.domain import MAX_READ_LIMIT, check_stream_id

router = APIRouter(prefix="/v1/streams", tags=["streams"])

EXPECTED_VERSION_QUERY = Query(
    description='Delete only if the stream is there: "any", "no_stream", "stream_exists" or '
    "the version of its last event.",
    pattern=r"^(any|no_stream|stream_exists|[0-9]{1,18})$",
)


APPEND_RESPONSES: dict[int | str, dict[str, str]] = {
    200: {"description": "A retry of an earlier append: nothing written, its result again."},
    409: {"description": "The stream is not at `expected_version` (see `actual_version`)."},
    410: {"description": "The stream was tombstoned."},
}
can_write = require_scope(Scopes.EVENTS_WRITE).dependency


async def append_request(request: Request) -> Response:
    """The hot path of `POST /v1/streams/{stream_id}/events`, served by `APPEND_ROUTE`.

    A plain Starlette endpoint: FastAPI's dependency solving, body parsing and response
    serialization cost a fifth of an append's CPU. It answers as the documented route does
    (scope, stream id, body errors as the same 422 problem, then the append).
    """
    await can_write(request, None)
    stream_id = check_stream_id(request.path_params["stream_id"])
    try:
        body = AppendIn.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None
    service: EventStoreService = request.app.state.event_store
    result, status = await appended(service, stream_id, body)
    return Response(result.model_dump_json(), status, media_type="application/json")


async def appended(
    service: EventStoreService, stream_id: str, body: AppendIn
) -> tuple[AppendOut, int]:
    result = await service.store.append(stream_id, body.to_events(), body.expected)
    out = AppendOut(
        stream_id=result.stream_id,
        first_version=result.first_version,
        last_version=result.last_version,
    )
    return out, 200 if result.replayed else 201


# `APPEND_ROUTE` serves appends ahead of every router (see `services.event_store.app`); the route
# below describes them in /docs and would answer the same, were it reached.
APPEND_ROUTE = TemplateRoute(
    router.prefix + "/{stream_id}/events", append_request, methods=["POST"], name="append"
)


@router.post("/{stream_id}/events", status_code=201, responses=APPEND_RESPONSES)
async def append(
    stream_id: StreamId, body: AppendIn, service: Service, response: Response, _: Writer
) -> AppendOut:
    """Appends 1-1,000 events, all or nothing, if the stream is at `expected_version`."""
    out, response.status_code = await appended(service, stream_id, body)
    return out


@router.get("/{stream_id}/events")
async def read(
    stream_id: StreamId,
    service: Service,
    response: Response,
    _: Reader,
    from_version: Annotated[int | None, Query(ge=0)] = None,
    direction: Literal["forward", "backward"] = "forward",
    limit: Annotated[int, Query(ge=1, le=MAX_READ_LIMIT)] = 100,
) -> StreamPageOut:
    """A page of the stream's visible events (retention and deletes honoured), with `next`."""
    page = await service.store.read_stream(
        stream_id, from_version=from_version, direction=direction, limit=limit
    )
    following = None
    if page.next_version is not None:
        query = urlencode(
            {"from_version": page.next_version, "direction": direction, "limit": limit}
        )
        following = f"/v1/streams/{quote(stream_id)}/events?{query}"
        response.headers["Link"] = f'<{following}>; rel="next"'
    return StreamPageOut.model_construct(
        stream_id=page.stream_id,
        events=[EventOut.of(event) for event in page.events],
        next_version=page.next_version,
        next=following,
    )


@router.get("/{stream_id}")
async def describe(stream_id: StreamId, service: Service, _: Reader) -> StreamInfoOut:
    """The stream's version, times, metadata and delete state (also when deleted)."""
    return StreamInfoOut.of(await service.store.stream_info(stream_id))


@router.put("/{stream_id}/metadata")
async def set_metadata(
    stream_id: StreamId, body: MetadataIn, service: Service, writer: Writer
) -> StreamInfoOut:
    """Replaces the stream's retention settings and `custom` metadata; later reads honour them."""
    info = await service.store.set_metadata(stream_id, body.to_metadata())
    await service.audit.record(
        "metadata_changed", actor=writer.subject, target=stream_id, details=body.model_dump()
    )
    return StreamInfoOut.of(info)


@router.delete("/{stream_id}", status_code=204, responses={410: {"description": "Tombstoned."}})
async def delete(
    stream_id: StreamId,
    service: Service,
    writer: Writer,
    hard: Annotated[bool, Query(description="Tombstone: no append, ever again.")] = False,
    expected_version: Annotated[str, EXPECTED_VERSION_QUERY] = "any",
) -> None:
    """Soft-deletes the stream (an append restarts it), or tombstones it with `hard=true`."""
    expected = expected_version_query(expected_version)
    await service.store.delete(stream_id, hard=hard, expected_version=expected)
    action = "stream_tombstoned" if hard else "stream_deleted"
    details = {"hard": hard, "expected_version": expected_version}
    await service.audit.record(action, actor=writer.subject, target=stream_id, details=details)
