"""The kit's route classes: authentication before anything else, strict JSON bodies.

`ServiceRoute` is the route class of every service router
(`APIRouter(prefix="/v1/…", route_class=ServiceRoute)`): it finds the route's `require_scope`
declarations once, when the route is built, and checks them before FastAPI reads the body or
validates a parameter. A caller without a token gets 401, one without the scope 403, whatever
it sent, and a valid token is verified once (the verifier caches it). Bodies are read as strict
JSON (`outrigger.http.bodies`).

`RequestRoute` is for the few hot paths whose cost FastAPI's parameter machinery would dominate:
the endpoint takes the `Request` and parses it itself, and the route describes itself in OpenAPI
from its own declaration (`openapi.parameter`, `openapi.query_parameters`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.routing import APIRoute

from outrigger.auth import BEARER, authorize, required_scopes
from outrigger.http.bodies import StrictJSONRequest

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine
    from typing import Any

    from starlette.requests import Request
    from starlette.responses import Response

    Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ServiceRoute(APIRoute):
    """A FastAPI route that checks its scopes first and reads its body as strict JSON."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        scopes = required_scopes(self.dependant)

        async def authorized_first(request: Request) -> Response:
            for scope in scopes:
                authorize(request, scope)
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return authorized_first


class RequestRoute(APIRoute):
    """A hot path: FastAPI calls the endpoint with the `Request` and nothing else (no
    dependency solving, no parameter parsing: on the cache's GET that machinery cost more than
    the whole read), after checking `scopes` (401, 403). The endpoint reads path, query and
    headers itself and returns a `Response`. OpenAPI describes the route from this declaration:
    `responses`, `openapi_extra` (its parameters) and the scopes, as security. Put ahead of the
    routers (`app.router.routes.insert(0, route)`), it also skips their dispatch.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        scopes: Collection[str],
        openapi_extra: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.scopes = tuple(scopes)
        security = {"security": [{BEARER.scheme_name: list(self.scopes)}]} if self.scopes else {}
        super().__init__(
            path, endpoint, openapi_extra={**security, **(openapi_extra or {})}, **options
        )
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

    def get_route_handler(self) -> Handler:
        endpoint: Handler = self.endpoint
        scopes = self.scopes

        async def authorized_first(request: Request) -> Response:
            for scope in scopes:
                authorize(request, scope)
            return await endpoint(request)

        return authorized_first
