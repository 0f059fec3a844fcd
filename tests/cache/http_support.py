"""What the cache API tests share: the app on each backend behind an in-process client.

`CacheApi` is a mixin of fixtures, like the contract suite's `StoreFixtures`: a test class that
inherits it runs each test against the in-memory store and against real Redis (under its own
key prefix, deleted afterwards; nothing flushes the shared database). The bus is in memory,
on a name of its own per test.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis

from outrigger.bus import connect_bus
from outrigger.testing import AuditInbox, audit_inbox, bearer, unique
from services.cache.app import build_app
from services.cache.settings import CacheSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from fastapi import FastAPI

    from outrigger.bus import MessageBus

SECRET = "cache-test-secret-of-at-least-32-bytes"
ALL = ("cache:read", "cache:write", "locks:write")
PROBLEM = "application/problem+json"


def cache_settings(redis_url: str, **overrides: Any) -> CacheSettings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "redis_url": redis_url,
        "amqp_url": f"memory://{unique('bus')}",
        "cache_key_prefix": unique("oc-api"),
        "cache_default_ttl_seconds": 60,
        "cache_max_ttl_seconds": 3600,
    }
    values.update(overrides)
    return CacheSettings(**values)


@dataclass
class Service:
    """The cache app, running, behind an in-process HTTP client with every scope."""

    app: FastAPI
    settings: CacheSettings
    http: httpx.AsyncClient
    bus: MessageBus
    audit: AuditInbox

    def as_(self, *scopes: str) -> dict[str, str]:
        return bearer(self.settings, *scopes)


@contextlib.asynccontextmanager
async def running(settings: CacheSettings, **build: Any) -> AsyncIterator[Service]:
    app = build_app(settings, **build)
    async with app.router.lifespan_context(app):
        bus = connect_bus(settings.amqp_url, source="tests")
        await bus.start()
        audit = await audit_inbox(bus, "cache")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://cache", headers=bearer(settings, *ALL)
        ) as http:
            yield Service(app, settings, http, bus, audit)
        await bus.close()


async def forget(redis_url: str, key_prefix: str) -> None:
    async with Redis.from_url(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(match=f"{key_prefix}:*")]
        if keys:
            await redis.delete(*keys)


class CacheApi:
    """Fixtures: `backend_url` (memory, then Redis), `make_service(**settings)`, `service`."""

    @pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
    def backend_url(self, request: pytest.FixtureRequest) -> str:
        if request.param == "memory":
            return "memory://"
        url: str = request.getfixturevalue("redis_url")
        return url

    @pytest.fixture
    async def make_service(
        self, backend_url: str
    ) -> AsyncIterator[Callable[..., contextlib.AbstractAsyncContextManager[Service]]]:
        prefixes: list[str] = []

        def make(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Service]:
            settings = cache_settings(backend_url, **overrides)
            prefixes.append(settings.cache_key_prefix)
            return running(settings)

        yield make
        if backend_url.startswith("redis"):
            for prefix in prefixes:
                await forget(backend_url, prefix)

    @pytest.fixture
    async def service(
        self, make_service: Callable[..., contextlib.AbstractAsyncContextManager[Service]]
    ) -> AsyncIterator[Service]:
        async with make_service() as running_service:
            yield running_service

    @pytest.fixture
    def ns(self) -> str:
        return unique("ns")
