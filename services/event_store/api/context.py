"""What the routes work with: the use cases (built by `app.py`), the caller, shared parameters."""

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from outrigger.auth import Principal, Scopes, require_scope
from services.event_store.domain import EVENT_TYPE_PATTERN, NAME_PATTERN
from services.event_store.settings import EventStoreSettings
from services.event_store.usecases import Caller, EventStoreService


# Dependencies are `async def` although they never await: FastAPI runs a plain `def` dependency
# in a worker thread, and two such hops per request cost a third of the append throughput.
async def _service(request: Request) -> EventStoreService:
    service: EventStoreService = request.app.state.event_store
    return service


async def _settings(request: Request) -> EventStoreSettings:
    settings: EventStoreSettings = request.app.state.settings
    return settings


def _caller(scope: str) -> object:
    async def caller(principal: Annotated[Principal, require_scope(scope)]) -> Caller:
        return Caller(principal.subject, reveal=principal.has_scope(Scopes.EVENTS_REVEAL))

    return Depends(caller)


Service = Annotated[EventStoreService, Depends(_service)]
Settings = Annotated[EventStoreSettings, Depends(_settings)]
StreamId = Annotated[
    str,
    Path(
        description="1-200 characters of `A-Z a-z 0-9 _ . : -`; the category is the part before "
        "the first `-`.",
        # stated for clients and checked by the use case, whose 422 says the rule in words
        json_schema_extra={"pattern": NAME_PATTERN},
        examples=["order-7"],
    ),
]
Reader = Annotated[Caller, _caller(Scopes.EVENTS_READ)]
"""A caller with `events:read`; sensitive fields are revealed to it only with `events:reveal`."""
Writer = Annotated[Caller, _caller(Scopes.EVENTS_WRITE)]
Admin = Annotated[Caller, _caller(Scopes.ADMIN)]
Category = Annotated[
    str | None,
    Query(
        description="Only streams `<category>-…` (the stream id's part before the first `-`).",
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
EventType = Annotated[
    str | None,
    Query(
        description="Only events of this type.", json_schema_extra={"pattern": EVENT_TYPE_PATTERN}
    ),
]
