"""Serving for real: a uvicorn server on a free port, drained gracefully on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import APIRouter

from outrigger.cli.output import CommandFailed, UserError
from outrigger.cli.serve import _serve_all, _server
from outrigger.errors import SettingsError
from outrigger.http import create_app
from outrigger.testing import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from outrigger.settings import Settings


async def test_shutdown_finishes_requests_in_flight(settings: Settings) -> None:
    router = APIRouter()

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(0.5)
        return {"done": "yes"}

    port = free_port()
    server = _server(
        create_app("kit-test", settings, routers=[router]), "127.0.0.1", port, settings
    )
    serving = asyncio.create_task(_serve_all([server]))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        request = asyncio.create_task(client.get("/slow"))
        await asyncio.sleep(0.1)
        server.should_exit = True
        response = await request
    await asyncio.wait_for(serving, 10)
    assert response.status_code == 200
    assert response.json() == {"done": "yes"}


async def test_a_server_that_cannot_start_stops_the_others_and_fails(settings: Settings) -> None:
    @contextlib.asynccontextmanager
    async def broken(_app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("the backend is not there")
        yield

    working = _server(create_app("working", settings), "127.0.0.1", free_port(), settings)
    failing = _server(
        create_app("failing", settings, lifespan=broken), "127.0.0.1", free_port(), settings
    )
    with pytest.raises(CommandFailed, match="failing could not start"):
        await asyncio.wait_for(_serve_all([working, failing]), 10)
    assert working.started


async def test_a_setting_the_lifespan_refuses_is_one_line_for_the_user(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    @contextlib.asynccontextmanager
    async def refusing(_app: FastAPI) -> AsyncIterator[None]:
        raise SettingsError("OUTRIGGER_SOMETHING: this host cannot do that")
        yield

    server = _server(
        create_app("refusing", settings, lifespan=refusing), "127.0.0.1", free_port(), settings
    )
    with pytest.raises(UserError, match=r"^OUTRIGGER_SOMETHING: this host cannot do that$"):
        await asyncio.wait_for(_serve_all([server]), 10)
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()], "no traceback logged"
    assert "Application startup failed. Exiting." in caplog.messages
