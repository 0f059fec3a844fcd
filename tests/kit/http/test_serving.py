"""Serving for real: a uvicorn server on a free port, drained gracefully on shutdown."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
from fastapi import APIRouter

from outrigger.cli.serve import _serve_all, _server
from outrigger.http import create_app
from outrigger.testing import free_port

if TYPE_CHECKING:
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
