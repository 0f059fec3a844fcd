"""Streams: append, read, describe, set metadata, delete."""

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Response

from outrigger.http import ServiceRoute, problem_responses
from services.event_store.api.context import Reader, Service, StreamId, Writer
from services.event_store.api.models import (
    AppendIn,
    AppendOut,
    EventOut,
    MetadataIn,
    StreamInfoOut,
    StreamPageOut,
    expected_version_query,
)
from services.event_store.domain import MAX_POSITION, MAX_READ_LIMIT

router = APIRouter(prefix="/v1/streams", tags=["streams"], route_class=ServiceRoute)

EXPECTED_VERSION_QUERY = Query(
    description='Delete only if the stream is there: "any", "no_stream", "stream_exists" or '
    "the version of its last event.",
    pattern=r"^(any|no_stream|stream_exists|[0-9]{1,15})$",
)
NOT_FOUND = "No such stream (it never had an event nor metadata)."
TOMBSTONED = "The stream was tombstoned: no reading or writing, ever again."
APPEND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A retry of an earlier append: nothing written, its result again."},
    **problem_responses(
        {
            409: "The stream is not at `expected_version` (see `actual_version`), or an event "
            "id was appended before with other content (see `event_id`).",
            410: TOMBSTONED,
        }
    ),
}


@router.post(
    "/{stream_id}/events", status_code=201, response_model=AppendOut, responses=APPEND_RESPONSES
)
async def append(stream_id: StreamId, body: AppendIn, service: Service, _: Writer) -> Response:
    """Appends 1-1,000 events, all or nothing, if the stream is at `expected_version`."""
    result = await service.append(stream_id, body.to_events(), body.expected_version)
    out = AppendOut(
        stream_id=result.stream_id,
        first_version=result.first_version,
        last_version=result.last_version,
    )
    # the hot path: written here, not through FastAPI's response validation (its model is above)
    status = 200 if result.replayed else 201
    return Response(out.model_dump_json(), status, media_type="application/json")


@router.get("/{stream_id}/events", responses=problem_responses({404: NOT_FOUND, 410: TOMBSTONED}))
async def read(
    stream_id: StreamId,
    service: Service,
    response: Response,
    caller: Reader,
    from_version: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
    direction: Literal["forward", "backward"] = "forward",
    limit: Annotated[int, Query(ge=1, le=MAX_READ_LIMIT)] = 100,
) -> StreamPageOut:
    """A page of the stream's visible events (retention and deletes honoured), with `next`.

    Sensitive fields are masked unless the token has `events:reveal` (each reveal is audited).
    """
    page = await service.read_stream(
        stream_id, caller, from_version=from_version, direction=direction, limit=limit
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


@router.get("/{stream_id}", responses=problem_responses({404: NOT_FOUND}))
async def describe(stream_id: StreamId, service: Service, _: Reader) -> StreamInfoOut:
    """The stream's version, times, metadata and delete state (also when deleted)."""
    return StreamInfoOut.of(await service.stream_info(stream_id))


@router.put("/{stream_id}/metadata", responses=problem_responses({410: TOMBSTONED}))
async def set_metadata(
    stream_id: StreamId, body: MetadataIn, service: Service, caller: Writer
) -> StreamInfoOut:
    """Replaces the stream's retention settings and `custom` metadata; later reads honour them."""
    return StreamInfoOut.of(await service.set_metadata(stream_id, body.to_metadata(), caller))


@router.delete(
    "/{stream_id}",
    status_code=204,
    responses=problem_responses(
        {
            404: NOT_FOUND,
            409: "The stream is not at `expected_version`.",
            410: "The stream was already tombstoned.",
        }
    ),
)
async def delete(
    stream_id: StreamId,
    service: Service,
    caller: Writer,
    hard: Annotated[bool, Query(description="Tombstone: no append, ever again.")] = False,
    expected_version: Annotated[str, EXPECTED_VERSION_QUERY] = "any",
) -> None:
    """Soft-deletes the stream (an append restarts it), or tombstones it with `hard=true`."""
    expected = expected_version_query(expected_version)
    await service.delete(stream_id, caller, hard=hard, expected_version=expected)
