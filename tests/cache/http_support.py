"""What the cache API tests share: the app on each backend, tokens, and an audit inbox.

`CacheApi` is a mixin of fixtures, like the contract suite's `StoreFixtures`: a test class that
inherits it runs each test against the in-memory store and against real Redis (under its own
key prefix, deleted afterwards; nothing flushes the shared database). The bus is in memory,
on a name of its own per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis

from outrigger.auth import TokenIssuer
from outrigger.bus import Ack, Delivery, connect_bus
from services.cache.app import build_app
from services.cache.settings import CacheSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from fastapi import FastAPI

    from outrigger.bus import MessageBus

SECRET = "cache-test-secret-of-at-least-32-bytes"
ALL = ("cache:read", "cache:write", "locks:write")
PROBLEM = "application/problem+json"


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


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


def bearer(settings: CacheSettings, *scopes: str) -> dict[str, str]:
    token = TokenIssuer.from_settings(settings).mint("tester", list(scopes), 300)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class AuditInbox:
    """Every audit record the cache publishes during a test."""

    records: list[Delivery] = field(default_factory=list)

    async def __call__(self, delivery: Delivery) -> Ack:
        self.records.append(delivery)
        return Ack()

    async def wait(self, count: int, within: float = 5.0) -> list[Delivery]:
        deadline = time.monotonic() + within
        while len(self.records) < count:
            assert time.monotonic() < deadline, f"{len(self.records)} audit records, not {count}"
            await asyncio.sleep(0.01)
        return self.records

    @property
    def actions(self) -> list[str]:
        return [record.routing_key for record in self.records]


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
        audit = AuditInbox()
        await bus.subscribe(unique("audit"), [("outrigger.audit", "cache.#")], audit)
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
