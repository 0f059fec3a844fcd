"""What the routes work with: the use cases (built by `app.py`), the caller, the channel."""

from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from outrigger.auth import BEARER, Principal, Scopes, authenticate, require_scope
from outrigger.errors import Forbidden
from services.notifications.domain import CHANNEL_PATTERN, MAX_CHANNEL_LENGTH
from services.notifications.usecases import NotificationsService


# `async def`, so FastAPI does not run them in a worker thread (see the event store's context)
async def service_of(request: Request) -> NotificationsService:
    service: NotificationsService = request.app.state.notifications
    return service


async def _reader(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Principal:
    """A caller with `notify:publish`, or with `notify:subscribe` (whose grants the use case
    then checks against the channel)."""
    principal = authenticate(request)
    if principal.has_scope(Scopes.NOTIFY_PUBLISH) or principal.has_scope(Scopes.NOTIFY_SUBSCRIBE):
        return principal
    subscribe, publish = Scopes.NOTIFY_SUBSCRIBE, Scopes.NOTIFY_PUBLISH
    raise Forbidden(
        f"this route needs the {subscribe!r} scope (with a grant covering the channel) or the "
        f"{publish!r} scope, which the token does not grant",
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{subscribe}"'},
        required_scope=subscribe,
    )


Service = Annotated[NotificationsService, Depends(service_of)]
Publisher = Annotated[Principal, require_scope(Scopes.NOTIFY_PUBLISH)]
Reader = Annotated[Principal, Security(_reader, scopes=[Scopes.NOTIFY_SUBSCRIBE])]
READER_SECURITY = {"security": [{BEARER.scheme_name: [Scopes.NOTIFY_PUBLISH]}]}
"""With `Reader`'s own requirement: either scope (OpenAPI lists alternatives)."""

CHANNEL_SCHEMA = {"pattern": CHANNEL_PATTERN, "maxLength": MAX_CHANNEL_LENGTH}
CHANNEL_DESCRIPTION = (
    "A channel: dotted segments of `A-Z a-z 0-9 _ - :`, at most 256 characters "
    "(`orders.eu.created`, `jobs.7f3c`)."
)
# stated for clients and checked by the use case, whose 422 says the rule in words
Channel = Annotated[
    str,
    Path(
        description=CHANNEL_DESCRIPTION,
        json_schema_extra=CHANNEL_SCHEMA,
        examples=["orders.created"],
    ),
]
