"""Subscriptions: one Server-Sent Events stream for several channels and patterns.

Each message is `id: <history id>`, `event: <its name>`, `data: <its JSON>`. Reconnecting with
`Last-Event-ID` (the header EventSource sends, or `?last_event_id=`) replays what the stream
missed, then goes live; if history no longer reaches back that far, the first event is
`event: reset` (its data says `resume_after`), then live. `?since=earliest` replays all history
keeps. Comment lines are heartbeats; `event: shutdown` ends a stream whose server is stopping.

A `RequestRoute`: the stream holds its request for as long as it lasts, thousands at once, so
the request passes through nothing it does not need (the kit's `RequestRoute`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from fastapi import Request  # noqa: TC002 (FastAPI reads the endpoint's annotation at runtime)

from outrigger.auth import Scopes, authenticate
from outrigger.errors import InvalidInput
from outrigger.http import RequestRoute, problem_responses
from outrigger.http.openapi import parameter
from outrigger.http.sse import FrameStream
from services.notifications.api.models import HISTORY_ID, HISTORY_ID_PATTERN
from services.notifications.domain import (
    MAX_CHANNEL_LENGTH,
    MAX_SUBSCRIPTION_CHANNELS,
    SUBSCRIPTION_PATTERN,
)

if TYPE_CHECKING:
    from services.notifications.usecases import NotificationsService

EARLIEST: Final = "earliest"
CHANNEL: Final = (
    f"A channel or a pattern, 1-{MAX_SUBSCRIPTION_CHANNELS} of them: `*` stands for one "
    "segment, a final `>` for the rest (`orders.*`, `jobs.>`). Each must be covered by the "
    "token's `channels` claim."
)


async def subscribe(request: Request) -> FrameStream:
    """Follows the channels and patterns asked for: history first when resuming, then live."""
    service: NotificationsService = request.app.state.notifications
    query = request.query_params
    since = query.get("since")
    if since is not None and since != EARLIEST:
        raise InvalidInput(f"since={since!r:.40}: the only value is {EARLIEST!r}")
    resume = request.headers.get("last-event-id") or query.get("last_event_id") or None
    connection = await service.subscribe(
        authenticate(request, query_token=True),
        query.getlist("channel"),
        last_event_id=resume,
        since_earliest=since == EARLIEST,
    )
    return FrameStream(connection)


ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": HISTORY_ID_PATTERN}
SUBSCRIBE = RequestRoute(
    "/v1/sse",
    subscribe,
    methods=["GET"],
    scopes=[Scopes.NOTIFY_SUBSCRIBE],
    query_token=True,
    name="subscribe",
    tags=["subscriptions"],
    summary="Subscribe",
    response_class=FrameStream,
    responses={
        200: {
            "description": "An SSE stream: `id:` history id, `event:` name, `data:` JSON.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses({403: "A channel asked for is not covered by the token's grants."}),
    },
    openapi_extra={
        "parameters": [
            {
                **parameter(
                    "channel",
                    "query",
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_SUBSCRIPTION_CHANNELS,
                        "items": {
                            "type": "string",
                            "pattern": SUBSCRIPTION_PATTERN,
                            "maxLength": MAX_CHANNEL_LENGTH,
                        },
                    },
                    CHANNEL,
                ),
                "required": True,
                "style": "form",
                "explode": True,
            },
            parameter("last_event_id", "query", ID_SCHEMA, f"Resume after this id. {HISTORY_ID}"),
            parameter(
                "since",
                "query",
                {"type": "string", "enum": [EARLIEST]},
                "Replay all history keeps.",
            ),
            parameter("Last-Event-ID", "header", ID_SCHEMA, "Resume after this id (reconnects)."),
        ],
    },
)
