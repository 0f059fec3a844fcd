"""`/readyz` against a real PostgreSQL: wrong URL, server stopped, server back."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest

from outrigger.db import Database
from outrigger.http import add_readiness_check, create_app
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
    assert down.json()["checks"]["database"].startswith("database: database unavailable")
    assert back.status_code == 200
