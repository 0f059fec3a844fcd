"""Request bodies as strict JSON: what RFC 8259 allows, and only that.

Python's `json` (which Starlette and FastAPI use) reads `NaN`, `Infinity` and `-Infinity`, which
no JSON peer can read back: stored, they came back as `null`. The kit reads bodies with orjson,
which refuses them, and numbers that overflow a double (`1e400`), with a 400 problem. Integers
beyond 64 bits become doubles, as I-JSON (RFC 7493) expects of every reader.

FastAPI routes of the kit's route class (`ServiceRoute`) read their bodies this way; a plain
endpoint that parses its body itself calls `json_body(request, Model)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, SkipValidation, ValidationError
from starlette.requests import Request
from typing_extensions import TypeAliasType

if TYPE_CHECKING:
    from collections.abc import Sequence

M = TypeVar("M", bound=BaseModel)


class StrictJSONRequest(Request):
    """A request whose `json()` is orjson's: no NaN or Infinity, failures as `JSONDecodeError`
    (orjson's is a subclass of the standard library's, which FastAPI maps to a 400)."""

    async def json(self) -> Any:
        return orjson.loads(await self.body())


def _json_invalid(exc: orjson.JSONDecodeError) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
        ]
    )


def _located(errors: Sequence[Any]) -> list[Any]:
    return [{**error, "loc": ("body", *error["loc"])} for error in errors]


async def json_body(request: Request, model: type[M]) -> M:
    """The request's body read as strict JSON and validated as `model`, with the same 400 and
    422 problems as a FastAPI route's body parameter."""
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise _json_invalid(exc) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(_located(exc.errors())) from None


# What a JSON value must be for every backend to keep it: no NUL character in a string or a key
# (PostgreSQL's text and jsonb cannot hold one) and integers within 64 bits. Stated in the OpenAPI
# document, so that every value the schema allows is stored; the adapters refuse the rest (422).
# `JsonField` and `JsonObjectField` type a request model's fields: documented, not validated
# (as fast as `Any`). mypy cannot follow the recursive alias, so it sees them as what they hold.
if TYPE_CHECKING:
    JsonField = Any
    JsonObjectField = dict[str, Any]
else:
    _Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]
    _Integer = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]
    _Object = Field(json_schema_extra={"additionalProperties": False})
    JsonValue = TypeAliasType(
        "JsonValue",
        Union[  # noqa: UP007  (a recursive alias needs the runtime Union)
            _Text,
            _Integer,
            float,
            bool,
            list["JsonValue"],
            Annotated[dict[_Text, "JsonValue"], _Object],
            None,
        ],
    )
    JsonField = SkipValidation[JsonValue]
    JsonObjectField = SkipValidation[Annotated[dict[_Text, JsonValue], _Object]]
