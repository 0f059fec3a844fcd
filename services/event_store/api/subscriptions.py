"""Subscriptions: Server-Sent Events that catch up from the store, then stay live.

Each event is `id: <global position>` and `data: <the event as JSON>`; reconnecting with
`Last-Event-ID` resumes right after it. `event: live` (no id) marks the end of catch-up;
`event: dropped` ends the stream of a client that fell too far behind, naming `resume_after`.
Comment lines are heartbeats. Sensitive fields are masked unless the token has `events:reveal`.
"""

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from outrigger.http import EventStream, ServiceRoute, problem_responses
from outrigger.sse import encode_json
from services.event_store.api.context import (
    Category,
    EventType,
    Reader,
    Service,
    Settings,
    StreamId,
)
from services.event_store.api.models import event_document
from services.event_store.domain import MAX_POSITION
from services.event_store.settings import EventStoreSettings
from services.event_store.usecases import Caller, Dropped, EventStoreService, Live
from services.event_store.usecases.log_tail import LogFilter

router = APIRouter(prefix="/v1", tags=["subscriptions"], route_class=ServiceRoute)

EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."}
}
LastEventId = Annotated[
    int | None,
    Header(
        alias="Last-Event-ID",
        ge=0,
        le=MAX_POSITION,
        description="Resume after this position (reconnects).",
    ),
]
Position = Annotated[int, Query(ge=0, le=MAX_POSITION, description="Start after this position.")]


def _heartbeat() -> ServerSentEvent:
    return ServerSentEvent(comment="heartbeat", sep="\n")


async def _frames(
    service: EventStoreService, wanted: LogFilter, after: int, caller: Caller
) -> AsyncIterator[bytes]:
    show = partial(service.shown, caller=caller, target="subscription")
    async for item in service.subscriptions.items(wanted, after, show):
        if isinstance(item, Live):
            yield encode_json({"position": item.position}, event="live")
        elif isinstance(item, Dropped):
            document = {"reason": item.reason, "resume_after": item.resume_after}
            yield encode_json(document, event="dropped")
        else:
            for event in item:
                yield encode_json(event_document(event), id=event.global_position)


def _stream(settings: EventStoreSettings, frames: AsyncIterator[bytes]) -> EventStream:
    return EventStream(
        frames,
        ping=settings.event_store_sse_heartbeat_seconds,
        ping_message_factory=_heartbeat,
        send_timeout=settings.event_store_sse_send_timeout_seconds,
        sep="\n",
    )


@router.get("/subscribe", response_class=EventSourceResponse, responses=EVENT_STREAM)
async def subscribe(
    service: Service,
    settings: Settings,
    caller: Reader,
    last_event_id: LastEventId = None,
    after: Position = 0,
    category: Category = None,
    type: EventType = None,
) -> EventSourceResponse:
    """The global log from `after` (or `Last-Event-ID`), then live."""
    wanted = service.subscriptions.log_filter(category, type)
    start = last_event_id if last_event_id is not None else after
    return _stream(settings, _frames(service, wanted, start, caller))


@router.get(
    "/streams/{stream_id}/subscribe",
    response_class=EventSourceResponse,
    responses={**EVENT_STREAM, **problem_responses({410: "The stream was tombstoned."})},
)
async def subscribe_stream(
    stream_id: StreamId,
    service: Service,
    settings: Settings,
    caller: Reader,
    last_event_id: LastEventId = None,
    from_version: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
) -> EventSourceResponse:
    """One stream's visible events from `from_version`, then live, in global order.

    A stream that does not exist yet is followed from its first event.
    """
    wanted, start = await service.subscriptions.stream_start(stream_id, from_version)
    if last_event_id is not None:
        start = last_event_id
    return _stream(settings, _frames(service, wanted, start, caller))
