"""A route class for hot paths: plain Starlette endpoints placed ahead of FastAPI's routers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Match, Route

if TYPE_CHECKING:
    from starlette.types import Scope


class TemplateRoute(Route):
    """A Starlette route that leaves itself in `scope["route"]`, as FastAPI's do, so the kit's
    metrics and access log name its template rather than `unmatched`.

    For the few routes whose cost FastAPI's parameter machinery and nested routers would
    dominate: the endpoint takes the `Request` and parses it itself; the same endpoint is also
    added to its router with `openapi_extra` so `/docs` still describes it.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope
