"""A request whose client goes away stops: its query is cancelled on the server and its pooled
connection is free again at once, not when the lock it waited for is released."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest
from fastapi import APIRouter
from prometheus_client import REGISTRY

from outrigger.db import Pool, conninfo
from outrigger.http import create_app
from outrigger.testing import serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from outrigger.settings import Settings

pytestmark = pytest.mark.postgres


def app_with_pool(settings: Settings, url: str, name: str, key: int) -> FastAPI:
    pool = Pool(url, application_name=name, max_size=1, wait_seconds=2)
    router = APIRouter()

    @router.get("/v1/locked")
    async def locked() -> dict[str, bool]:
        async with pool.connection() as connection:
            await connection.execute("SELECT pg_advisory_lock(%s)", (key,))
        return {"locked": True}

    @router.get("/v1/free")
    async def free() -> dict[str, bool]:
        async with pool.connection() as connection:
            await connection.execute("SELECT 1")
        return {"free": True}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        yield
        await pool.close()

    return create_app("kit-test", settings, routers=[router], lifespan=lifespan)


async def _waiting(admin: psycopg.AsyncConnection[object], name: str) -> int:
    cursor = await admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
        (name,),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _answered(status: str) -> float:
    labels = {"service": "kit-test", "route": "/v1/locked", "method": "GET", "status": status}
    return REGISTRY.get_sample_value("outrigger_http_requests_total", labels) or 0.0


async def test_a_request_whose_client_left_cancels_its_query_and_frees_its_connection(
    postgres_url: str, settings: Settings
) -> None:
    key, name = uuid.uuid4().int >> 65, f"kit-test-{uuid.uuid4().hex[:8]}"
    app = app_with_pool(settings, postgres_url, name, key)
    before = _answered("4xx")
    async with (
        await psycopg.AsyncConnection.connect(conninfo(postgres_url), autocommit=True) as admin,
        serving(app) as base,
    ):
        await admin.execute("SELECT pg_advisory_lock(%s)", (key,))  # held by another session
        async with httpx.AsyncClient(base_url=base) as client:
            request = asyncio.create_task(client.get("/v1/locked", timeout=30))
            deadline = time.monotonic() + 5
            while await _waiting(admin, name) != 1:
                assert time.monotonic() < deadline, "the query never waited for the lock"
                await asyncio.sleep(0.05)
            request.cancel()  # the client gives up and closes its connection
            with pytest.raises(asyncio.CancelledError):
                await request
        left = time.monotonic()
        while await _waiting(admin, name):
            assert time.monotonic() - left < 2, "the query still runs after its client left"
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=base) as client:
            response = await client.get("/v1/free", timeout=1.0)
        assert response.status_code == 200, "the pool's one connection is free again"
    assert _answered("4xx") == before + 1  # logged and counted as 499, not as a server error
