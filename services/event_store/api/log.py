"""The global log: every event in commit order, at contiguous positions 1, 2, 3 ..."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from outrigger.http import ServiceRoute
from services.event_store.api.context import Category, EventType, Reader, Service
from services.event_store.api.models import EventOut, LogPageOut
from services.event_store.domain import MAX_LOG_READ_LIMIT, MAX_POSITION

router = APIRouter(prefix="/v1", tags=["log"], route_class=ServiceRoute)


@router.get("/log")
async def read_log(
    service: Service,
    response: Response,
    caller: Reader,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="The last position already read.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_READ_LIMIT)] = 1000,
    category: Category = None,
    type: EventType = None,
) -> LogPageOut:
    """Events with positions above `after`, oldest first; follow it with `next`.

    Sensitive fields are masked unless the token has `events:reveal` (each reveal is audited).
    """
    events, next_after = await service.read_log(
        caller, after, limit, category=category, event_type=type
    )
    query = {"after": next_after, "limit": limit, "category": category, "type": type}
    following = "/v1/log?" + urlencode({k: v for k, v in query.items() if v is not None})
    response.headers["Link"] = f'<{following}>; rel="next"'
    return LogPageOut.model_construct(
        events=[EventOut.of(event) for event in events], next_after=next_after, next=following
    )
