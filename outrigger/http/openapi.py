"""The OpenAPI document says what the routes really answer: every error as RFC 9457 problem+json.

`create_app` completes each operation with the errors the kit itself gives: 401 and 403 where a
scope is required, 400 and 413 where there is a body, 422 where there is a body or a parameter,
503 on every `/v1` route. A service declares its own outcomes on the route with
`problem_responses({404: "No such stream.", 409: "…"})`; any error response declared without a
body is given the problem schema too.

An optional parameter typed `X | None` is documented as `X`: a client leaves it out rather than
sending `null` (which a header or query string cannot carry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from outrigger.errors import PROBLEM_BASE
from outrigger.http.responses import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import FastAPI
    from pydantic import BaseModel

PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. Extension members (e.g. `required_scope`, "
    "`actual_version`, `checks`) say more about some problems.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": f"`{PROBLEM_BASE}<slug>`"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What was wrong, and what to do."},
        "instance": {"type": "string", "description": "The request path."},
        "errors": {
            "type": "array",
            "description": "One entry per invalid part of the request.",
            "items": {
                "type": "object",
                "required": ["location", "field", "message", "type"],
                "properties": {
                    "location": {"type": "string", "examples": ["body", "path", "query"]},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
KIT_OUTCOMES: Final = {
    400: "The body is not JSON (NaN and Infinity are not JSON either).",
    401: "No bearer token, or not a valid one.",
    403: "The token does not grant the scope this route needs.",
    413: "The body is larger than the service accepts.",
    422: "A parameter or a body field is invalid; `errors` names each.",
    503: "A backend the route needs is unavailable; try again later.",
}
HEADERS: Final = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer …`"}},
    503: {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds to wait before trying again.",
        }
    },
}
_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")


def problem_responses(outcomes: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` for the errors it answers itself, each a problem+json body:
    `@router.delete(..., responses=problem_responses({404: "No such stream."}))`."""
    return {status: _problem(status, description) for status, description in outcomes.items()}


def _problem(status: int, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


def _kit_outcomes(path: str, operation: dict[str, Any]) -> list[int]:
    statuses = []
    has_body = "requestBody" in operation
    if has_body:
        statuses += [400, 413]
    if operation.get("security"):
        statuses += [401, 403]
    if has_body or operation.get("parameters"):
        statuses.append(422)
    if path.startswith("/v1/"):
        statuses.append(503)
    return statuses


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Completes a generated OpenAPI document in place (see the module docstring)."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _not_nullable(parameter)
            responses = operation.setdefault("responses", {})
            for status in _kit_outcomes(path, operation):
                declared = responses.get(str(status), {})
                if PROBLEM_MEDIA_TYPE not in declared.get("content", {}):  # FastAPI's own 422
                    responses[str(status)] = _problem(status, KIT_OUTCOMES[status])
            for status, response in responses.items():
                if status[0] in "45" and set(response.get("content", {})) != {PROBLEM_MEDIA_TYPE}:
                    responses[status] = _problem(int(status), response.get("description", ""))
            operation["responses"] = dict(sorted(responses.items()))
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return schema


def _not_nullable(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    kinds = schema.get("anyOf", [])
    if parameter.get("required") or len(kinds) != 2 or {"type": "null"} not in kinds:
        return
    (kind,) = (each for each in kinds if each != {"type": "null"})
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    parameter["schema"] = {**kind, **rest}


def install_problem_documentation(app: FastAPI) -> None:
    """Makes `app.openapi()` return the document completed by `document_problems`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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
