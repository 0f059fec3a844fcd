"""What every service gets from `create_app()`, shown on a tiny app built here."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from fastapi import APIRouter
from pydantic import BaseModel, Field

from outrigger.auth import require_scope
from outrigger.errors import Conflict
from outrigger.http import add_readiness_check, create_app
from outrigger.testing import bearer
from tests.kit.http.conftest import running

if TYPE_CHECKING:
    from fastapi import FastAPI

    from outrigger.settings import Settings

PROBLEM = "application/problem+json"


class Item(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(ge=0)


def build(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/v1")

    @router.get("/items/{item_id}", dependencies=[require_scope("cache:read")])
    async def read_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @router.post("/items", status_code=201, dependencies=[require_scope("cache:write")])
    async def create_item(item: Item) -> Item:
        if item.name == "taken":
            raise Conflict('item "taken" exists already', current_version=3)
        return item

    @router.get("/crash", dependencies=[require_scope("cache:read")])
    async def crash() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return create_app("kit-test", settings, routers=[router])


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return build(settings)


async def test_a_route_answers_with_the_right_scope(app: FastAPI, settings: Settings) -> None:
    async with running(app) as client:
        response = await client.get("/v1/items/7", headers=bearer(settings, "cache:read"))
    assert response.status_code == 200
    assert response.json() == {"id": 7}


async def test_missing_token_is_401_problem(app: FastAPI) -> None:
    async with running(app) as client:
        response = await client.get("/v1/items/7")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["instance"] == "/v1/items/7"
    assert body["type"].endswith("/unauthorized")


async def test_missing_scope_is_403_problem_naming_it(app: FastAPI, settings: Settings) -> None:
    async with running(app) as client:
        response = await client.post(
            "/v1/items", json={"name": "a", "quantity": 1}, headers=bearer(settings, "cache:read")
        )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert "cache:write" in response.json()["detail"]


async def test_unknown_route_is_404_problem(app: FastAPI) -> None:
    async with running(app) as client:
        response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "no route matches GET /v1/nothing-here"


async def test_wrong_method_is_405_problem(app: FastAPI) -> None:
    async with running(app) as client:
        response = await client.delete("/v1/items/7")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "allow" in response.headers


async def test_invalid_body_is_422_with_field_errors(app: FastAPI, settings: Settings) -> None:
    async with running(app) as client:
        response = await client.post(
            "/v1/items", json={"name": "", "quantity": -1}, headers=bearer(settings, "cache:write")
        )
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith("/invalid-input")
    assert {error["field"] for error in body["errors"]} == {"name", "quantity"}


async def test_non_json_body_is_400(app: FastAPI, settings: Settings) -> None:
    headers = {**bearer(settings, "cache:write"), "content-type": "application/json"}
    async with running(app) as client:
        response = await client.post("/v1/items", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


async def test_domain_error_keeps_its_extension_members(app: FastAPI, settings: Settings) -> None:
    async with running(app) as client:
        response = await client.post(
            "/v1/items", json={"name": "taken", "quantity": 1}, headers=bearer(settings, "admin")
        )
    assert response.status_code == 409
    assert response.json()["current_version"] == 3


async def test_oversized_body_is_413_by_declared_length(app: FastAPI, settings: Settings) -> None:
    body = b'{"name": "' + b"x" * 2000 + b'", "quantity": 1}'
    headers = {**bearer(settings, "cache:write"), "content-type": "application/json"}
    async with running(app) as client:
        response = await client.post("/v1/items", content=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert "1024 bytes" in response.json()["detail"]


async def test_oversized_streamed_body_is_413(app: FastAPI, settings: Settings) -> None:
    async def chunks():  # no Content-Length: the limit is counted as the body arrives
        for _ in range(10):
            yield b" " * 200

    headers = {**bearer(settings, "cache:write"), "content-type": "application/json"}
    async with running(app) as client:
        response = await client.post("/v1/items", content=chunks(), headers=headers)
    assert response.status_code == 413


async def test_unexpected_exception_is_500_without_internals(
    app: FastAPI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**bearer(settings, "cache:read"), "X-Request-ID": "req-crash-1"}
    async with running(app) as client:
        with caplog.at_level(logging.ERROR, logger="outrigger.http"):
            response = await client.get("/v1/crash", headers=headers)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "req-crash-1" in response.json()["detail"]
    assert any("hunter2" in (record.exc_text or "") for record in caplog.records)


async def test_request_id_is_kept_or_made_and_echoed(app: FastAPI) -> None:
    async with running(app) as client:
        kept = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/healthz")
        refused = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tabs"})
    assert kept.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert refused.headers["x-request-id"] != "bad id\twith tabs"


async def test_metrics_are_labelled_by_route_template(app: FastAPI, settings: Settings) -> None:
    async with running(app) as client:
        await client.get("/v1/items/1", headers=bearer(settings, "cache:read"))
        await client.get("/v1/items/2", headers=bearer(settings, "cache:read"))
        metrics = (await client.get("/metrics")).text
    assert (
        'outrigger_http_requests_total{method="GET",route="/v1/items/{item_id}",'
        'service="kit-test",status="2xx"}'
    ) in metrics
    assert "outrigger_http_request_duration_seconds_bucket" in metrics
    assert "/v1/items/1" not in metrics


async def test_openapi_documents_bearer_auth(app: FastAPI) -> None:
    async with running(app) as client:
        spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]
    assert "/healthz" not in spec["paths"]


async def test_readyz_reports_each_check(settings: Settings) -> None:
    app = build(settings)

    async def healthy() -> None:
        return None

    async def broken() -> None:
        raise ConnectionRefusedError

    add_readiness_check(app, "database", healthy)
    async with running(app) as client:
        ready = await client.get("/readyz")
        add_readiness_check(app, "cache", broken)
        not_ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}
    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == PROBLEM
    assert not_ready.json()["checks"]["cache"].startswith("cache: ConnectionRefusedError")
    assert alive.status_code == 200


@pytest.mark.parametrize(("mode", "logged"), [("all", [200, 404]), ("errors", [404]), ("off", [])])
async def test_the_access_log_has_all_requests_only_errors_or_none(
    settings: Settings, caplog: pytest.LogCaptureFixture, mode: str, logged: list[int]
) -> None:
    app = build(settings.model_copy(update={"access_log": mode}))
    headers = bearer(settings, "cache:read")
    async with running(app) as client:
        with caplog.at_level(logging.INFO, logger="outrigger.http"):
            assert (await client.get("/v1/items/1", headers=headers)).status_code == 200
            assert (await client.get("/v1/nowhere", headers=headers)).status_code == 404
    lines = [r for r in caplog.records if r.name == "outrigger.http"]
    assert [getattr(r, "status", None) for r in lines] == logged


async def test_cors_is_off_unless_origins_are_set(app: FastAPI) -> None:
    async with running(app) as client:
        answer = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in answer.headers


async def test_a_configured_origin_gets_preflights_answered_before_authentication(
    settings: Settings,
) -> None:
    app = build(settings.model_copy(update={"cors_origins": ("https://app.example",)}))
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, last-event-id",
    }
    async with running(app) as client:
        allowed = await client.options("/v1/items/1", headers=preflight)
        other = await client.options(
            "/v1/items/1", headers={**preflight, "Origin": "https://evil.example"}
        )
        unauthorized = await client.get("/v1/items/1", headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "last-event-id" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert unauthorized.status_code == 401  # CORS headers never stand in for a token
    assert unauthorized.headers["access-control-allow-origin"] == "https://app.example"


def test_cors_origins_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTRIGGER_CORS_ORIGINS", "https://a.example, https://b.example")
    from outrigger.settings import Settings, load_settings

    assert load_settings(Settings).cors_origins == ("https://a.example", "https://b.example")
