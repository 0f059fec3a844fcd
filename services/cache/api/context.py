"""What the routes share: the running cache the lifespan built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from outrigger.audit_trail import AuditTrail
    from services.cache.domain import CacheStore


@dataclass(frozen=True, slots=True)
class Cache:
    """The running cache: `app.state.cache`, set by the lifespan in `services.cache.app`."""

    store: CacheStore
    audit: AuditTrail
    max_value_bytes: int


async def cache(request: Request) -> Cache:
    """The dependency that hands a route the running cache."""
    running: Cache = request.app.state.cache
    return running


Running = Annotated[Cache, Depends(cache)]
