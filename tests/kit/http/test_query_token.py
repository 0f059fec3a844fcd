"""`?access_token=`: taken by the routes that say so (for EventSource), by no other, and never
written to the access log or shown in a trace."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from outrigger.auth import Principal, authenticate, require_scope
from outrigger.http import RequestRoute, ServiceRoute, create_app
from outrigger.http.middleware import redact_query
from outrigger.testing import bearer
from tests.kit.http.conftest import running

if TYPE_CHECKING:
    from fastapi import FastAPI

    from outrigger.settings import Settings


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": authenticate(request, query_token=True).subject})


def build(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/v1", route_class=ServiceRoute)

    @router.get("/feed")
    async def feed(
        principal: Principal = require_scope("notify:subscribe", query_token=True),
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    @router.get("/items", dependencies=[require_scope("notify:subscribe")])
    async def items() -> dict[str, str]:
        return {"items": "all"}

    app = create_app("kit-test", settings, routers=[router])
    app.router.routes.insert(
        0,
        RequestRoute(
            "/v1/plain-feed", whoami, scopes=["notify:subscribe"], query_token=True, methods=["GET"]
        ),
    )
    return app


def token(settings: Settings, *scopes: str, subject: str = "browser") -> str:
    return bearer(settings, *scopes, subject=subject)["Authorization"].removeprefix("Bearer ")


@pytest.mark.parametrize("path", ["/v1/feed", "/v1/plain-feed"])
async def test_a_route_that_says_so_takes_the_token_as_access_token(
    settings: Settings, path: str
) -> None:
    async with running(build(settings)) as client:
        answer = await client.get(
            path, params={"access_token": token(settings, "notify:subscribe")}
        )
        wrong_scope = await client.get(path, params={"access_token": token(settings, "cache:read")})
        bad = await client.get(path, params={"access_token": "not-a-jwt"})
        missing = await client.get(path)
    assert answer.status_code == 200
    assert answer.json() == {"subject": "browser"}
    assert wrong_scope.status_code == 403
    assert bad.status_code == 401
    assert missing.status_code == 401
    assert "?access_token=" in missing.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/feed", "/v1/plain-feed"])
async def test_the_authorization_header_wins_over_access_token(
    settings: Settings, path: str
) -> None:
    header = bearer(settings, "cache:read", subject="header")
    async with running(build(settings)) as client:
        answer = await client.get(
            path,
            params={"access_token": token(settings, "notify:subscribe")},
            headers=header,
        )
    assert answer.status_code == 403


async def test_other_routes_ignore_access_token(settings: Settings) -> None:
    async with running(build(settings)) as client:
        answer = await client.get(
            "/v1/items", params={"access_token": token(settings, "notify:subscribe")}
        )
    assert answer.status_code == 401
    assert answer.json()["detail"] == "missing bearer token: send 'Authorization: Bearer <token>'"


async def test_only_the_routes_that_take_it_document_access_token(settings: Settings) -> None:
    paths = build(settings).openapi()["paths"]

    def parameters(path: str) -> list[str]:
        return [p["name"] for p in paths[path]["get"].get("parameters", [])]

    assert "access_token" in parameters("/v1/feed")
    assert "access_token" in parameters("/v1/plain-feed")
    assert "access_token" not in parameters("/v1/items")
    assert paths["/v1/plain-feed"]["get"]["security"] == [{"bearer": ["notify:subscribe"]}]


async def test_the_access_log_never_shows_the_token(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    secret = token(settings, "notify:subscribe")
    async with running(build(settings)) as client:
        with caplog.at_level(logging.INFO):
            assert (
                await client.get("/v1/feed", params={"access_token": secret})
            ).status_code == 200
            assert (await client.get("/v1/feed", params={"access_token": "bad"})).status_code == 401
    lines = [r for r in caplog.records if r.name == "outrigger.http"]
    assert [getattr(r, "status", None) for r in lines] == [200, 401]
    for record in caplog.records:
        if record.name.startswith("httpx"):
            continue  # the test's own client
        assert secret not in record.getMessage()
        assert all(secret not in str(value) for value in vars(record).values())


def test_a_query_shown_in_a_trace_has_its_token_redacted() -> None:
    assert redact_query(b"channel=a&access_token=s3cret&channel=b") == (
        "channel=a&access_token=REDACTED&channel=b"
    )
    assert redact_query(b"channel=a%2Eb&since=earliest") == "channel=a%2Eb&since=earliest"
