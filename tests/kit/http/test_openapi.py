"""`/openapi.json` documents every error a route answers, as problem+json; `/docs` and `/redoc`
work offline, with their assets served by the service itself."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import jsonschema
import pytest
from fastapi import APIRouter, Header, Query
from pydantic import BaseModel

from outrigger.auth import require_scope
from outrigger.errors import NotFound
from outrigger.http import ServiceRoute, create_app, problem_responses
from outrigger.http.openapi import PROBLEM_SCHEMA
from outrigger.testing import bearer
from tests.kit.http.conftest import running

if TYPE_CHECKING:
    from fastapi import FastAPI

    from outrigger.settings import Settings

PROBLEM = "application/problem+json"


class Note(BaseModel):
    text: str


def build(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/v1/notes", route_class=ServiceRoute)

    @router.post("", status_code=201, dependencies=[require_scope("cache:write")])
    async def add(note: Note) -> Note:
        return note

    @router.get(
        "/{note_id}",
        dependencies=[require_scope("cache:read")],
        responses=problem_responses({404: "No such note."}),
    )
    async def read(note_id: int) -> Note:
        raise NotFound(f"no note {note_id}")

    @router.delete("", status_code=204, responses={409: {"description": "Still in use."}})
    async def clear(
        before: Annotated[int | None, Query(ge=0)] = None,
        resume: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
    ) -> None:
        return None

    return create_app("kit-test", settings, routers=[router])


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return build(settings)


def responses(app: FastAPI, path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = app.openapi()["paths"][path][method]
    return operation["responses"]


def problem_statuses(app: FastAPI, path: str, method: str) -> set[str]:
    found = set()
    for status, response in responses(app, path, method).items():
        if status[0] in "45":
            assert response["content"] == {PROBLEM: {"schema": PROBLEM_REF}}, status
            found.add(status)
    return found


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def test_a_route_with_a_scope_and_a_body_documents_the_kit_s_errors(app: FastAPI) -> None:
    statuses = problem_statuses(app, "/v1/notes", "post")
    assert statuses == {"400", "401", "403", "413", "422", "503"}
    assert "WWW-Authenticate" in responses(app, "/v1/notes", "post")["401"]["headers"]
    assert "Retry-After" in responses(app, "/v1/notes", "post")["503"]["headers"]


def test_a_route_documents_its_own_outcomes_as_problems(app: FastAPI) -> None:
    assert problem_statuses(app, "/v1/notes/{note_id}", "get") == {
        "401",
        "403",
        "404",
        "422",
        "503",
    }
    assert responses(app, "/v1/notes/{note_id}", "get")["404"]["description"] == "No such note."


def test_an_error_declared_by_description_alone_gets_the_problem_schema(app: FastAPI) -> None:
    assert problem_statuses(app, "/v1/notes", "delete") == {"409", "422", "503"}


def test_an_optional_parameter_is_documented_by_its_type_not_as_nullable(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/v1/notes"]["delete"]
    schemas = {parameter["name"]: parameter["schema"] for parameter in operation["parameters"]}
    assert schemas["before"] == {"type": "integer", "minimum": 0, "title": "Before"}
    assert schemas["Last-Event-ID"] == {"type": "integer", "title": "Last-Event-Id"}


def test_the_problem_schema_replaces_fastapi_s_validation_error(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    assert schemas["Problem"] == PROBLEM_SCHEMA
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert not [path for path in app.openapi()["paths"] if not path.startswith("/v1/")]


async def test_the_problems_the_kit_answers_fit_the_documented_schema(
    app: FastAPI, settings: Settings
) -> None:
    reader = bearer(settings, "cache:read")
    async with running(app) as client:
        answers = [
            await client.post("/v1/notes", json={"text": "a"}),
            await client.post("/v1/notes", json={"text": "a"}, headers=reader),
            await client.post("/v1/notes", json={}, headers=bearer(settings, "cache:write")),
            await client.get("/v1/notes/7", headers=reader),
            await client.get("/v1/notes/x", headers=reader),
        ]
    assert [answer.status_code for answer in answers] == [401, 403, 422, 404, 422]
    for answer in answers:
        assert answer.headers["content-type"] == PROBLEM
        jsonschema.validate(answer.json(), PROBLEM_SCHEMA)


ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js": "javascript", "swagger-ui.css": "text/css"}),
        ("/redoc", {"redoc.standalone.js": "javascript"}),
    ],
)
async def test_the_docs_pages_load_only_assets_the_service_serves(
    app: FastAPI, page: str, assets: dict[str, str]
) -> None:
    async with running(app) as client:
        html = (await client.get(page)).text
        referenced = ASSET.findall(html)
        assert "http" not in html.replace("http-equiv", "")
        assert all(url.startswith("/docs/static/") for url in referenced), referenced
        names = {url.removeprefix("/docs/static/") for url in referenced}
        assert set(assets) <= names
        for url in referenced:
            served = await client.get(url)
            assert served.status_code == 200, url
            assert len(served.content) > 1000
            kind = assets.get(url.removeprefix("/docs/static/"), "image/png")
            assert kind in served.headers["content-type"]
        assert (await client.get("/openapi.json")).status_code == 200
