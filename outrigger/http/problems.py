"""Every error a client can see, mapped once to RFC 9457 problem+json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from outrigger import errors
from outrigger.http.responses import problem_response

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response


def _instance(request: Request) -> str:
    return request.url.path


async def _outrigger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.OutriggerError)
    return problem_response(exc, _instance(request))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    cls = errors.class_for_status(exc.status_code) or errors.OutriggerError
    detail = exc.detail if isinstance(exc.detail, str) else cls.title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    error = cls(detail, headers=dict(exc.headers or {}))
    response = problem_response(error, _instance(request))
    response.status_code = exc.status_code
    return response


def _field_problem(error: Any) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ())]
    message = error.get("msg", "invalid")
    if error.get("type") == "json_invalid":  # the decoder's own words say what and where
        message = str((error.get("ctx") or {}).get("error") or message)
    return {
        "location": location[0] if location else "body",
        "field": ".".join(location[1:]),
        "message": message,
        "type": error.get("type", "invalid"),
    }


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [_field_problem(error) for error in exc.errors()]
    if any(problem["type"] == "json_invalid" for problem in problems):
        error: errors.OutriggerError = errors.BadRequest(
            "the request body is not valid JSON", errors=problems
        )
    else:
        first = problems[0] if problems else {"field": "", "message": "invalid"}
        where = first["field"] or first.get("location", "request")
        error = errors.InvalidInput(
            f"{where}: {first['message']}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            errors=problems,
        )
    return problem_response(error, _instance(request))


def install_problem_handlers(app: FastAPI) -> None:
    """Routes every expected error to problem+json. Unexpected ones are the middleware's."""
    app.add_exception_handler(errors.OutriggerError, _outrigger_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
