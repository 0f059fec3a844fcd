from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import httpx
import pytest

from outrigger.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

SECRET = "test-secret-of-at-least-thirty-two-bytes!"


@pytest.fixture
def settings(tmp_path: object) -> Settings:
    return Settings(jwt_secret=SECRET, data_dir=tmp_path, max_body_bytes=1024)


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an in-process client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
