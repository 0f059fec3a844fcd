"""The kit's route classes: authentication before anything else, strict JSON bodies.

`ServiceRoute` is the route class of every service router
(`APIRouter(prefix="/v1/…", route_class=ServiceRoute)`): it finds the route's `require_scope`
declarations once, when the route is built, and checks them before FastAPI reads the body or
validates a parameter. A caller without a token gets 401, one without the scope 403, whatever
it sent, and a valid token is verified once (the verifier caches it). Bodies are read as strict
JSON (`outrigger.http.bodies`).

`TemplateRoute` is the same for a plain Starlette endpoint, which parses its request itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.routing import APIRoute
from starlette.routing import Match, Route

from outrigger.auth import authorize, required_scopes
from outrigger.http.bodies import StrictJSONRequest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Coroutine
    from typing import Any

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Scope

    Endpoint = Callable[[Request], Awaitable[Response]]


class ServiceRoute(APIRoute):
    """A FastAPI route that checks its scopes first and reads its body as strict JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        scopes = required_scopes(self.dependant)

        async def authorized_first(request: Request) -> Response:
            for scope in scopes:
                authorize(request, scope)
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return authorized_first


class TemplateRoute(Route):
    """A Starlette route that checks `scopes` before its endpoint runs (give them: the default,
    none, serves anyone), and leaves itself in
    `scope["route"]`, as FastAPI's do, so the kit's metrics and access log name its template.

    For the few routes whose cost FastAPI's parameter machinery would dominate: the endpoint
    takes the `Request` and parses it itself (`outrigger.http.json_body`).
    """

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        *,
        scopes: Collection[str] = (),
        methods: Collection[str] | None = None,
        name: str | None = None,
    ) -> None:
        required = tuple(scopes)

        async def authorized_first(request: Request) -> Response:
            for scope in required:
                authorize(request, scope)
            return await endpoint(request)

        super().__init__(
            path,
            authorized_first,
            methods=list(methods) if methods is not None else None,
            name=name or endpoint.__name__,
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope
