"""JSON and problem+json responses rendered with orjson."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse

if TYPE_CHECKING:
    from outrigger.errors import OutriggerError

PROBLEM_MEDIA_TYPE = "application/problem+json"


class JSONResponse(_StarletteJSONResponse):
    """A JSON response serialised by orjson (datetimes, UUIDs and dataclasses included)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(error: OutriggerError, instance: str | None = None) -> ProblemResponse:
    """The RFC 9457 response for an error, with the headers it carries (e.g. WWW-Authenticate)."""
    return ProblemResponse(
        error.problem(instance), status_code=error.status, headers=error.headers or None
    )
