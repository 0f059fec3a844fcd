"""What the routes work with: the service's parts (built by `app.py`) and shared parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request

from outrigger.auth import Principal, Scopes, require_scope
from services.event_store.domain import check_stream_id

if TYPE_CHECKING:
    from outrigger.audit_trail import AuditTrail
    from services.event_store.domain import EventStore
    from services.event_store.subjects import SubjectShredder
    from services.event_store.subscriptions import LogSubscriptions


@dataclass(frozen=True)
class EventStoreService:
    """The parts the routes use; `app.py` builds them in the lifespan."""

    store: EventStore
    """Reads and writes: sensitive fields encrypted on the way in, decrypted on the way out."""
    subscriptions: LogSubscriptions
    shredder: SubjectShredder
    audit: AuditTrail
    heartbeat_seconds: float
    send_timeout_seconds: float


# Dependencies are `async def` although they never await: FastAPI runs a plain `def` dependency
# in a worker thread, and two such hops per request cost a third of the append throughput.
async def _service(request: Request) -> EventStoreService:
    service: EventStoreService = request.app.state.event_store
    return service


async def _stream_id(
    stream_id: Annotated[
        str,
        Path(
            description="1-200 characters of `A-Z a-z 0-9 _ . : -`; the category is the part "
            "before the first `-`.",
            examples=["order-7"],
        ),
    ],
) -> str:
    return check_stream_id(stream_id)


Service = Annotated[EventStoreService, Depends(_service)]
StreamId = Annotated[str, Depends(_stream_id)]
Reader = Annotated[Principal, require_scope(Scopes.EVENTS_READ)]
Writer = Annotated[Principal, require_scope(Scopes.EVENTS_WRITE)]
Admin = Annotated[Principal, require_scope(Scopes.ADMIN)]
