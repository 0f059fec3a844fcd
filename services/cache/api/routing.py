"""The cache's two route classes, authentication before anything else and the lean hot path,
and the OpenAPI parameters a lean route declares.

Both are FastAPI routes, so OpenAPI describes them from their own declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.routing import APIRoute

from outrigger.auth import authenticate

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from fastapi import Request, Response
    from pydantic import BaseModel

    Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class AuthenticatedRoute(APIRoute):
    """Checks the bearer token (401) before FastAPI reads the body or any parameter, so an
    anonymous caller learns nothing about the route and costs no parsing; the scope (403) is
    the route's `require_scope`, which reuses the verified principal."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            authenticate(request)
            return await handle(request)

        return authenticated


class RequestRoute(APIRoute):
    """A hot path: the endpoint takes the `Request`, checks its scope and reads path, query and
    headers itself, and returns a `Response`; FastAPI calls it with nothing in between (no
    dependency solving, no parameter parsing: on the cache's GET that machinery cost more than
    the whole read). Its OpenAPI description comes from `responses` and `openapi_extra` on the
    same declaration. Served ahead of the routers (`app.py`), it also skips their dispatch.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
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
        return endpoint


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
