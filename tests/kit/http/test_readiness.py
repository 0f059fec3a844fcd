"""`/readyz`: required and degraded-only dependencies, their metric and log lines, starting while
one is down; against a real PostgreSQL: wrong URL, a busy pool, server stopped and back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY

from outrigger.db import Database
from outrigger.errors import MessagingError
from outrigger.http import add_readiness_check, create_app, dependency
from outrigger.settings import Settings
from tests.kit.http.conftest import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from outrigger.testing.servers import PrivatePostgres


def app_with_database(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database.from_settings(settings)
        app.state.database = database
        add_readiness_check(app, "database", database.check)
        yield
        await database.dispose()

    return create_app("kit-test", settings, lifespan=lifespan)


@pytest.mark.postgres
async def test_ready_with_a_reachable_database(postgres_url: str, settings: Settings) -> None:
    app = app_with_database(settings.model_copy(update={"database_url": postgres_url}))
    async with running(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200


async def test_not_ready_with_a_wrong_database_url(settings: Settings) -> None:
    wrong = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    app = app_with_database(settings.model_copy(update={"database_url": wrong}))
    async with running(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("not ready: database: database unavailable")


@pytest.mark.postgres
async def test_a_pool_busy_with_requests_stays_ready(postgres_url: str, settings: Settings) -> None:
    busy = {"database_url": postgres_url, "database_pool_size": 1, "database_max_overflow": 0}
    app = app_with_database(settings.model_copy(update=busy))
    async with running(app) as client, app.state.database.unit_of_work():  # its only connection
        response = await client.get("/readyz")
    assert response.status_code == 200


async def test_readiness_follows_postgres_going_down_and_back(
    postgres_server: PrivatePostgres, settings: Settings
) -> None:
    app = app_with_database(settings.model_copy(update={"database_url": postgres_server.url}))
    async with running(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        await asyncio.to_thread(postgres_server.stop)
        down = await client.get("/readyz")
        await asyncio.to_thread(postgres_server.start)
        back = await client.get("/readyz")
    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
    assert down.json()["checks"]["database"].startswith("database: database unavailable")
    assert back.status_code == 200


class Dependency:
    """A dependency that is down until `up` is set; `start` fails while it is down."""

    def __init__(self, *, up: bool = True) -> None:
        self.up = up
        self.started = False

    async def check(self) -> None:
        if not self.up:
            raise MessagingError("broker unreachable")

    async def start(self) -> None:
        await self.check()
        self.started = True


def app_with(settings: Settings, **dependencies: tuple[Dependency, bool]) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for name, (fake, required) in dependencies.items():
                await stack.enter_async_context(
                    dependency(app, name, check=fake.check, start=fake.start, required=required)
                )
            yield

    return create_app("kit-test", settings, lifespan=lifespan)


def _up(name: str, required: str) -> float | None:
    labels = {"service": "kit-test", "dependency": name, "required": required}
    return REGISTRY.get_sample_value("outrigger_dependency_up", labels)


async def test_a_degraded_only_dependency_down_leaves_the_service_ready_and_says_so(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    database, bus = Dependency(), Dependency()
    app = app_with(settings, database=(database, True), bus=(bus, False))
    async with running(app) as client:
        bus.up = False
        with caplog.at_level(logging.INFO, logger="outrigger.http"):
            degraded = [await client.get("/readyz") for _ in range(3)]
            gauge_down = _up("bus", "false")
            bus.up = True
            back = await client.get("/readyz")
    assert [response.status_code for response in degraded] == [200] * 3
    assert degraded[0].json() == {
        "status": "degraded",
        "checks": {"database": "ok", "bus": "bus: broker unreachable"},
    }
    assert (gauge_down, _up("bus", "false"), _up("database", "true")) == (0, 1, 1)
    assert back.json()["status"] == "ready"
    lines = [r.getMessage() for r in caplog.records if r.name == "outrigger.http"]
    assert lines == ["degraded, still serving: bus: broker unreachable", "bus is back"]


async def test_a_required_dependency_down_is_not_ready_with_retry_after(
    settings: Settings,
) -> None:
    database = Dependency()
    app = app_with(settings, database=(database, True))
    async with running(app) as client:
        database.up = False
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["checks"] == {"database": "database: broker unreachable"}
    assert _up("database", "true") == 0


async def test_a_service_starts_while_a_dependency_is_down_and_starts_it_when_it_is_back(
    settings: Settings,
) -> None:
    database = Dependency(up=False)
    app = app_with(settings, database=(database, True))
    async with running(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        assert not database.started
        database.up = True
        deadline = time.monotonic() + 5
        while not database.started:
            assert time.monotonic() < deadline, "not started within 5 s of coming back"
            await asyncio.sleep(0.05)
        assert (await client.get("/readyz")).status_code == 200


async def test_a_check_that_hangs_is_a_failure_after_two_seconds(settings: Settings) -> None:
    async def hangs() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # a slow clean-up, such as a driver cancelling its query
            raise

    app = create_app("kit-test", settings)
    add_readiness_check(app, "database", hangs)
    async with running(app) as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "database: no answer within 2s"
    assert elapsed < 2.5


async def test_what_a_passing_check_returns_is_shown_as_its_detail(settings: Settings) -> None:
    async def layers() -> dict[str, list[str]]:
        return {"active": ["rlimits", "seccomp"]}

    async def broken() -> dict[str, list[str]]:
        raise MessagingError("broker unreachable")

    app = create_app("kit-test", settings)
    add_readiness_check(app, "sandbox", layers)
    add_readiness_check(app, "database", Dependency().check)
    async with running(app) as client:
        ready = await client.get("/readyz")
        add_readiness_check(app, "bus", broken)
        not_ready = await client.get("/readyz")
    assert ready.json() == {
        "status": "ready",
        "checks": {"sandbox": "ok", "database": "ok"},
        "details": {"sandbox": {"active": ["rlimits", "seccomp"]}},
    }
    assert not_ready.status_code == 503
    assert not_ready.json()["details"] == {"sandbox": {"active": ["rlimits", "seccomp"]}}
