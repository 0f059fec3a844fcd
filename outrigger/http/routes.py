"""The kit's route classes: authentication before anything else, strict JSON bodies.

`ServiceRoute` is the route class of every service router
(`APIRouter(prefix="/v1/…", route_class=ServiceRoute)`): it finds the route's `require_scope`
declarations once, when the route is built, and checks them before FastAPI reads the body or
validates a parameter. A caller without a token gets 401, one without the scope 403, whatever
it sent, and a valid token is verified once (the verifier caches it). Bodies are read as strict
JSON (`outrigger.http.bodies`).

`RequestRoute` is for the few hot paths whose cost FastAPI's parameter machinery would dominate:
the endpoint takes the `Request` and parses it itself, and the route describes itself in OpenAPI
from its own declaration (`openapi.parameter`, `openapi.query_parameters`). It is also the lean
way to serve a long response: while a response streams, everything its request passed through
stays in memory, and a `RequestRoute` passes through nothing but its endpoint (no exit stacks,
no dependency solving), which on an SSE hub holding thousands of streams is most of what each
one costs.

Either route accepts the token as `?access_token=` too when it says so (`require_scope(scope,
query_token=True)`, `RequestRoute(..., query_token=True)`): see `outrigger.auth.dependencies`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.routing import APIRoute
from starlette.requests import Request

from outrigger.auth import (
    ACCESS_TOKEN,
    BEARER,
    authorize,
    required_scopes,
    takes_query_token,
)
from outrigger.auth.dependencies import ACCESS_TOKEN_DESCRIPTION
from outrigger.http.bodies import StrictJSONRequest

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine
    from typing import Any

    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ServiceRoute(APIRoute):
    """A FastAPI route that checks its scopes first and reads its body as strict JSON."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        scopes = required_scopes(self.dependant)
        query_token = takes_query_token(self.dependant)

        async def authorized_first(request: Request) -> Response:
            for scope in scopes:
                authorize(request, scope, query_token=query_token)
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return authorized_first


class RequestRoute(APIRoute):
    """A hot path: FastAPI calls the endpoint with the `Request` and nothing else (no
    dependency solving, no parameter parsing: on the cache's GET that machinery cost more than
    the whole read), after checking `scopes` (401, 403). The endpoint reads path, query and
    headers itself and returns a `Response`. OpenAPI describes the route from this declaration:
    `responses`, `openapi_extra` (its parameters) and the scopes, as security. Put ahead of the
    routers (`app.router.routes.insert(0, route)`), it also skips their dispatch.
    `query_token=True`: the token may come as `?access_token=` too (documented as a parameter).

    The endpoint's errors are answered by the app's exception handlers, as any route's.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        scopes: Collection[str],
        query_token: bool = False,
        openapi_extra: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.scopes = tuple(scopes)
        self.query_token = query_token
        extra = dict(openapi_extra or {})
        if self.scopes:
            extra.setdefault("security", [{BEARER.scheme_name: list(self.scopes)}])
        if query_token:
            extra["parameters"] = [*extra.get("parameters", ()), _ACCESS_TOKEN_PARAMETER]
        super().__init__(path, endpoint, openapi_extra=extra, **options)
        dependant = self.dependant
        declared = [
            *dependant.path_params,
            *dependant.query_params,
            *dependant.header_params,
            *dependant.cookie_params,
            *dependant.body_params,
            *dependant.dependencies,
        ]
        if declared:
            raise TypeError(
                f"{self.path}: a RequestRoute endpoint takes only the Request; it would never "
                f"be given {[getattr(item, 'name', item) for item in declared]}"
            )

        self.app = _answering(self.get_route_handler())

    def get_route_handler(self) -> Handler:
        endpoint: Handler = self.endpoint
        scopes, query_token = self.scopes, self.query_token

        async def authorized_first(request: Request) -> Response:
            for scope in scopes:
                authorize(request, scope, query_token=query_token)
            return await endpoint(request)

        return authorized_first


_ACCESS_TOKEN_PARAMETER = {
    "name": ACCESS_TOKEN,
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": ACCESS_TOKEN_DESCRIPTION,
}


def _answering(handler: Handler) -> ASGIApp:
    """The route's ASGI app: the handler's response, sent. Nothing else stays on the stack while
    it is sent; an error goes up to the app's exception handlers (Starlette's
    `ExceptionMiddleware`)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app
