"""What the routes share: the running cache the lifespan built, and a route class for hot paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.routing import Match, Route

if TYPE_CHECKING:
    from starlette.types import Scope

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


class TemplateRoute(Route):
    """A Starlette route that leaves itself in `scope["route"]`, as FastAPI's do, so the kit's
    metrics and access log name its template rather than `unmatched`."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope
