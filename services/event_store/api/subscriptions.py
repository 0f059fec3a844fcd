"""Subscriptions: Server-Sent Events that catch up from the store, then stay live.

Each event is `id: <global position>` and `data: <the event as JSON>`; reconnecting with
`Last-Event-ID` resumes right after it. `event: live` (no id) marks the end of catch-up;
`event: dropped` ends the stream of a client that fell too far behind, naming `resume_after`.
Comment lines are heartbeats.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from outrigger.http import EventStream
from services.event_store.api.context import EventStoreService, Reader, Service, StreamId

router = APIRouter(prefix="/v1", tags=["subscriptions"])

EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."}
}
LastEventId = Annotated[
    int | None,
    Header(alias="Last-Event-ID", ge=0, description="Resume after this position (reconnects)."),
]


def _heartbeat() -> ServerSentEvent:
    return ServerSentEvent(comment="heartbeat", sep="\n")


def _sse(service: EventStoreService, events: AsyncIterator[bytes]) -> EventStream:
    return EventStream(
        events,
        ping=service.heartbeat_seconds,
        ping_message_factory=_heartbeat,
        send_timeout=service.send_timeout_seconds,
        sep="\n",
    )


@router.get("/subscribe", response_class=EventSourceResponse, responses=EVENT_STREAM)
async def subscribe(
    service: Service,
    _: Reader,
    last_event_id: LastEventId = None,
    after: Annotated[int, Query(ge=0, description="Start after this position.")] = 0,
    category: Annotated[str | None, Query(description="Only streams `<category>-…`.")] = None,
    type: Annotated[str | None, Query(description="Only events of this type.")] = None,
) -> EventSourceResponse:
    """The global log from `after` (or `Last-Event-ID`), then live."""
    wanted = service.subscriptions.log_filter(category, type)
    start = last_event_id if last_event_id is not None else after
    return _sse(service, service.subscriptions.events(wanted, start))


@router.get(
    "/streams/{stream_id}/subscribe", response_class=EventSourceResponse, responses=EVENT_STREAM
)
async def subscribe_stream(
    stream_id: StreamId,
    service: Service,
    _: Reader,
    last_event_id: LastEventId = None,
    from_version: Annotated[int | None, Query(ge=0)] = None,
) -> EventSourceResponse:
    """One stream's visible events from `from_version`, then live, in global order.

    A stream that does not exist yet is followed from its first event.
    """
    wanted, start = await service.subscriptions.stream_start(stream_id, from_version)
    if last_event_id is not None:
        start = last_event_id
    return _sse(service, service.subscriptions.events(wanted, start))
