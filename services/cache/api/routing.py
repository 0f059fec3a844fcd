"""The cache's hot-path route class, and the OpenAPI parameters such a route declares.

Every other cache route is a kit `ServiceRoute` (scopes checked first, strict JSON bodies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.routing import APIRoute

from outrigger.auth import BEARER, authorize

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine

    from fastapi import Request, Response
    from pydantic import BaseModel

    Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class RequestRoute(APIRoute):
    """A hot path: FastAPI calls the endpoint with the `Request` and nothing else (no
    dependency solving, no parameter parsing: on the cache's GET that machinery cost more than
    the whole read), after checking `scopes` (401, 403). The endpoint reads path, query and
    headers itself and returns a `Response`. OpenAPI describes the route from this declaration:
    `responses`, `openapi_extra` (its parameters) and the scopes, as security. Served ahead of
    the routers (`app.py`), it also skips their dispatch.
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


def parameter(
    name: str, where: str, schema: dict[str, Any], description: str = ""
) -> dict[str, Any]:
    """One OpenAPI parameter `in` `where` (path, query, header); path parameters are required."""
    found = {"name": name, "in": where, "required": where == "path", "schema": schema}
    return found | ({"description": description} if description else {})


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The fields of `model` as optional query parameters: declare with the model that parses
    them at run time, so the document and the parsing cannot drift apart."""
    found = []
    for name, field in model.model_json_schema()["properties"].items():
        schema = {k: v for k, v in field.items() if k not in ("title", "description")}
        found.append(parameter(name, "query", schema, field.get("description", "")))
    return found
