"""The kit's route classes: the token is checked before anything else, bodies are strict JSON."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from outrigger.auth import require_scope
from outrigger.http import RequestRoute, ServiceRoute, create_app, json_body
from outrigger.testing import bearer
from tests.kit.http.conftest import SECRET, running

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Message

    from outrigger.settings import Settings


class Item(BaseModel):
    name: str = Field(min_length=1)
    weight: float
    details: dict[str, Any] = {}


async def create_plain(request: Request) -> JSONResponse:
    item = await json_body(request, Item)
    return JSONResponse(item.model_dump(), status_code=201)


def build(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/v1/shelves", route_class=ServiceRoute)

    @router.post("/{shelf}/items", status_code=201, dependencies=[require_scope("cache:write")])
    async def create(shelf: int, item: Item) -> Item:
        return item

    @router.get("/{shelf}", dependencies=[require_scope("cache:read")])
    async def shelf(shelf: int, limit: int = 10) -> dict[str, int]:
        return {"shelf": shelf, "limit": limit}

    app = create_app("kit-test", settings, routers=[router])
    plain = RequestRoute("/v1/plain", create_plain, scopes=["cache:write"], methods=["POST"])
    app.router.routes.insert(0, plain)
    return app


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return build(settings)


BAD_REQUESTS = [
    ("POST", "/v1/shelves/1/items", b"{not json"),
    ("POST", "/v1/shelves/1/items", b'{"name": ""}'),
    ("POST", "/v1/shelves/x/items", b'{"name": "a", "weight": 1}'),
    ("GET", "/v1/shelves/x?limit=many", b""),
    ("POST", "/v1/plain", b"{not json"),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
async def test_no_token_is_401_whatever_was_sent(
    app: FastAPI, method: str, path: str, body: bytes
) -> None:
    headers = {"content-type": "application/json"}
    async with running(app) as client:
        response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("missing bearer token")


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
async def test_a_token_without_the_scope_is_403_whatever_was_sent(
    app: FastAPI, settings: Settings, method: str, path: str, body: bytes
) -> None:
    headers = {"content-type": "application/json", **bearer(settings, "events:read")}
    async with running(app) as client:
        response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == 403
    assert response.json()["required_scope"].startswith("cache:")


async def test_a_refused_caller_is_answered_before_its_body_is_read(
    app: FastAPI, settings: Settings
) -> None:
    """The app never asks for the body of a request it refuses (the client may still be
    sending it): the answer does not depend on it, and costs nothing to compute."""
    received: list[Message] = []
    sent: list[Message] = []

    async def receive() -> Message:
        message: Message = {"type": "http.request", "body": b"{not json", "more_body": False}
        received.append(message)
        return message

    async def send(message: Message) -> None:
        sent.append(message)

    for headers in ([], list(_raw(bearer(settings, "cache:read")))):
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/shelves/1/items",
            "raw_path": b"/v1/shelves/1/items",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), *headers],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("test", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
        }
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [401, 403]
    assert received == []


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


async def test_a_token_with_the_scope_reaches_validation_and_the_route(
    app: FastAPI, settings: Settings
) -> None:
    headers = bearer(settings, "cache:read", "cache:write")
    async with running(app) as client:
        bad = await client.post("/v1/shelves/x/items", json={"name": "a"}, headers=headers)
        good = await client.post(
            "/v1/shelves/1/items", json={"name": "a", "weight": 1.5}, headers=headers
        )
        read = await client.get("/v1/shelves/3?limit=2", headers=headers)
        plain = await client.post("/v1/plain", json={"name": "b", "weight": 2}, headers=headers)
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {"shelf", "weight"}
    assert good.status_code == 201
    assert good.json() == {"name": "a", "weight": 1.5, "details": {}}
    assert read.json() == {"shelf": 3, "limit": 2}
    assert plain.status_code == 201
    assert plain.json() == {"name": "b", "weight": 2.0, "details": {}}


NOT_JSON = [b'{"name": "a", "weight": NaN}', b'{"name": "a", "weight": Infinity}']
NOT_JSON += [b'{"name": "a", "weight": -Infinity}', b'{"name": "a", "weight": 1e400}']
NOT_JSON += [b'{"name": "a", "weight": 1, "details": {"x": [NaN]}}']


@pytest.mark.parametrize("path", ["/v1/shelves/1/items", "/v1/plain"])
@pytest.mark.parametrize("body", NOT_JSON)
async def test_nan_and_infinity_are_refused_with_a_400_problem(
    app: FastAPI, settings: Settings, path: str, body: bytes
) -> None:
    headers = {"content-type": "application/json", **bearer(settings, "cache:write")}
    async with running(app) as client:
        response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "the request body is not valid JSON"
    [error] = response.json()["errors"]
    assert error["type"] == "json_invalid"
    assert error["message"] != "JSON decode error"  # says where and what


async def test_a_plain_route_gives_the_same_422_problem_as_a_fastapi_route(
    app: FastAPI, settings: Settings
) -> None:
    headers = bearer(settings, "cache:write")
    async with running(app) as client:
        plain = await client.post("/v1/plain", json={"name": ""}, headers=headers)
        routed = await client.post("/v1/shelves/1/items", json={"name": ""}, headers=headers)
    assert plain.status_code == routed.status_code == 422
    assert plain.json()["errors"] == routed.json()["errors"]


async def test_a_token_with_an_absurd_expiry_is_401_not_500(app: FastAPI) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"iss": "outrigger", "sub": "x", "iat": now, "exp": 10**400, "scope": "cache:read"},
        SECRET,
        "HS256",
    )
    async with running(app) as client:
        response = await client.get("/v1/shelves/1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "exp claim" in response.json()["detail"]
