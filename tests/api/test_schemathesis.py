"""Every operation of every service, tried by schemathesis against its own OpenAPI document.

Each installed service is built as `outrigger dev` builds it (embedded backends: a migrated
SQLite file, the in-memory cache and bus) and called in-process with a token holding every scope
and every channel (so that subscriptions are opened). Schemathesis generates schema-valid
requests (derandomized: the same ones on every run; at most 15 per operation, 2 for an event
stream, read for 2 s) and checks that none gets a 5xx, that every answer fits the documented
status codes, content types, headers and bodies, and that no schema-valid request is refused
with a 4xx other than the documented business outcomes (401, 403, 404, 409, 410, 412). Every
operation is tried; the failure reported for each is the first its examples met.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from outrigger import catalog
from outrigger.auth import ALL_SCOPES, Scopes
from outrigger.settings import load_settings
from outrigger.testing import bearer, unique
from tests.databases import copy_sqlite

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI

SECRET = "schemathesis-run-secret-of-32-bytes-or-more"
EXAMPLES_PER_OPERATION = 15
STREAMS_PER_OPERATION = 2
STREAM_SECONDS = 2.0
ACCEPTED = ["2XX", "401", "403", "404", "409", "410", "412"]
SERVICES = [info.name for info in catalog.installed()]


def _environment(folder: Path) -> dict[str, str]:
    """`outrigger dev`'s embedded backends in `folder`, and nothing of this machine's settings."""
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("OUTRIGGER_")},
        "OUTRIGGER_DATA_DIR": str(folder),
        "OUTRIGGER_SECRETS_DIR": str(folder / "no-secrets"),
        "OUTRIGGER_JWT_SECRET": SECRET,
        "OUTRIGGER_REDIS_URL": "memory://",
        "OUTRIGGER_AMQP_URL": f"memory://{unique('schemathesis')}",
        "OUTRIGGER_ACCESS_LOG": "off",
    }


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded database, migrated by `outrigger migrate` in a process of its own."""
    folder = tmp_path_factory.mktemp("migrated")
    command = [str(Path(sys.executable).with_name("outrigger")), "migrate"]
    subprocess.run(command, env=_environment(folder), check=True, capture_output=True, timeout=120)
    return folder


@pytest.fixture(scope="module", params=SERVICES)
def service_app(
    request: pytest.FixtureRequest, migrated: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, str]]:
    """The service as `outrigger dev` builds it, from the environment alone, and a token."""
    info = catalog.service(request.param)
    folder = tmp_path_factory.mktemp(info.package)
    copy_sqlite(migrated, folder)
    with pytest.MonkeyPatch.context() as patch:
        for name in os.environ:
            if name.startswith("OUTRIGGER_"):
                patch.delenv(name)
        for name, value in _environment(folder).items():
            patch.setenv(name, value)
        patch.chdir(folder)
        # every channel granted, so that subscriptions (notifications) are opened, not refused
        headers = bearer(load_settings(), channels=["**"])
        token = headers["Authorization"].removeprefix("Bearer ")
        yield info.app_factory()(), token


def _streams(operation: Any) -> bool:
    """Whether the operation answers with Server-Sent Events (each example then waits)."""
    answers = operation.definition.raw.get("responses", {}).values()
    return any("text/event-stream" in answer.get("content", {}) for answer in answers)


def _examples(operation: Any, failures: dict[str, str]) -> None:
    """Tries `operation` with schema-valid requests; the first failure, if any, is kept."""

    @hypothesis.settings(
        max_examples=STREAMS_PER_OPERATION if _streams(operation) else EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def call(case: Any) -> None:
        case.call_and_validate()

    try:
        call()
    except (AssertionError, BaseExceptionGroup) as failed:  # schemathesis' Failure, FailureGroup
        failures[operation.label] = _summary(str(failed))


def _summary(report: str, width: int = 400) -> str:
    """Schemathesis' report with each line cut to `width` (generated bodies can be huge)."""
    lines = [line[:width] + ("…" if len(line) > width else "") for line in report.splitlines()]
    return "\n".join(line for line in lines if line.strip())


def test_every_operation_answers_as_documented(
    service_app: tuple[FastAPI, str],
) -> None:
    app, token = service_app
    config = SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"bearer": {"bearer": token}}},
            "max-stream-events": 3,
            "request-timeout": STREAM_SECONDS,  # an event stream is read for this long at most
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    failures: dict[str, str] = {}
    tried = 0
    for result in schema.get_all_operations():
        _examples(result.ok(), failures)
        tried += 1
    assert tried > 0
    report = "\n\n".join(f"== {label}\n{failure}" for label, failure in sorted(failures.items()))
    assert not failures, f"{len(failures)} of {tried} operations failed:\n\n{report}"


BAD_VALUE = "not%20valid!"


def _bad_request(path: str, operation: dict[str, Any]) -> tuple[str, bytes]:
    """The operation's URL with every parameter invalid, and a body that is not JSON."""
    url = re.sub(r"\{[^}]+\}", BAD_VALUE, path)
    query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
    if query:
        url += "?" + "&".join(f"{name}={BAD_VALUE}" for name in query)
    return url, b"{not json" if "requestBody" in operation else b""


def _unused_scope(document: dict[str, Any]) -> str:
    """A scope that no operation of the document needs (nor `admin`, which grants them all)."""
    used = {
        scope
        for operations in document["paths"].values()
        for operation in operations.values()
        for requirement in operation.get("security", [])
        for scopes in requirement.values()
        for scope in scopes
    }
    return sorted(ALL_SCOPES - used - {Scopes.ADMIN})[0]


async def test_every_operation_checks_the_token_before_anything_else(
    service_app: tuple[FastAPI, str],
) -> None:
    """No token is a 401 and a token without the scope a 403, whatever else the request holds."""
    app, _ = service_app
    settings = app.state.settings
    wrong_scope = bearer(settings, _unused_scope(app.openapi()))
    misjudged = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path, operations in app.openapi()["paths"].items():
                for method, operation in operations.items():
                    if not operation.get("security"):
                        continue
                    url, body = _bad_request(path, operation)
                    headers = {"content-type": "application/json"}
                    for expected, extra in ((401, {}), (403, wrong_scope)):
                        answer = await client.request(
                            method, url, content=body, headers={**headers, **extra}
                        )
                        if answer.status_code != expected:
                            misjudged.append(
                                f"{method.upper()} {path}: {answer.status_code}, not {expected}"
                            )
    assert not misjudged, "\n".join(misjudged)
