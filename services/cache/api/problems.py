"""How the cache's OpenAPI document describes errors: every status an operation can answer, as
`application/problem+json` with the problem schema (RFC 9457).

Routes declare `responses={**problems(401, 403, 422, 503), 409: problem("…")}`;
`document_problems(app)` files those
schemas under the problem media type, which FastAPI would put under `application/json`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from outrigger.http.responses import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from fastapi import FastAPI

DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No valid bearer token (sent before anything else is read).",
    403: "The token lacks the operation's scope (`required_scope` names it).",
    404: "Not found.",
    409: "Conflict.",
    412: "The If-Match / If-None-Match condition did not hold (`current_version`).",
    413: "The body is over the size limit; nothing was stored.",
    422: "The request breaks a rule; the detail says which. Nothing changed.",
    503: "Redis is unavailable; retry shortly (nothing is known to have changed).",
}


class Problem(BaseModel):
    """An RFC 9457 problem; extension members (`errors`, `current_version`, …) say more."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str = Field(description="what was wrong and what to do")
    instance: str | None = Field(None, description="the path of the request")


def problem(description: str) -> dict[str, Any]:
    """One `responses` entry: a problem, described."""
    return {"model": Problem, "description": description}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses` entries for `statuses`, with their usual descriptions."""
    return {status: problem(DESCRIPTIONS[status]) for status in statuses}


def document_problems(app: FastAPI) -> None:
    """Moves the schema of every 4xx and 5xx response of `app`'s OpenAPI document from
    `application/json` to `application/problem+json`, the media type the kit answers with."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in build().get("paths", {}).values():
                for operation in operations.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[:1] in "45" and "application/json" in content:
                            content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to extend its document
