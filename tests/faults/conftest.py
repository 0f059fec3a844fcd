"""The fault suite's services: the event store and the cache, each as its own process on the
private servers (a migrated database of its own, a Redis that keeps what it acknowledged, a
RabbitMQ node), started once per session and again after a test killed one."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from outrigger.auth import TokenIssuer
from outrigger.settings import Settings
from outrigger.testing.servers import private_redis
from tests.databases import migrated_database
from tests.faults.support import Service

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outrigger.testing.servers import PrivatePostgres, PrivateRabbitMQ, PrivateRedis

SECRET = "fault-suite-secret-of-at-least-32-bytes"
SCOPES = ["events:read", "events:write", "cache:read", "cache:write"]


@pytest.fixture(scope="session")
def headers() -> dict[str, str]:
    token = TokenIssuer.from_settings(Settings(jwt_secret=SECRET)).mint("faults", SCOPES, 3600)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def fault_database(_postgres_server: PrivatePostgres) -> Iterator[str]:
    _postgres_server.start()
    with migrated_database(_postgres_server.url) as url:
        yield url


@pytest.fixture(scope="session")
def _durable_redis() -> Iterator[PrivateRedis]:
    with private_redis(appendonly=True) as server:
        yield server


@pytest.fixture
def durable_redis(_durable_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """A private Redis with an fsynced append-only file: a restart keeps every acknowledged
    write, so a write the cache acknowledged and then lost is the cache's fault."""
    _durable_redis.resume()
    _durable_redis.start()
    yield _durable_redis
    _durable_redis.resume()
    _durable_redis.start()


def event_store_env(database: str, rabbitmq: PrivateRabbitMQ) -> dict[str, str]:
    return {
        "OUTRIGGER_DATABASE_URL": database,
        "OUTRIGGER_AMQP_URL": rabbitmq.url,
        "OUTRIGGER_JWT_SECRET": SECRET,
        "OUTRIGGER_EVENT_STORE_RELAY_IDLE_WAIT_SECONDS": "0.2",
        # appends blocked by a test's lock are ended by their clients, not by the lock timeout
        "OUTRIGGER_DATABASE_LOCK_TIMEOUT_SECONDS": "30",
    }


def cache_env(redis: PrivateRedis, rabbitmq: PrivateRabbitMQ) -> dict[str, str]:
    return {
        "OUTRIGGER_REDIS_URL": redis.url,
        "OUTRIGGER_AMQP_URL": rabbitmq.url,
        "OUTRIGGER_JWT_SECRET": SECRET,
        "OUTRIGGER_CACHE_KEY_PREFIX": f"faults{uuid.uuid4().hex[:6]}",
    }


@pytest.fixture(scope="session")
def _event_store(
    tmp_path_factory: pytest.TempPathFactory,
    fault_database: str,
    _rabbitmq_server: PrivateRabbitMQ,
) -> Iterator[Service]:
    env = event_store_env(fault_database, _rabbitmq_server)
    service = Service("event-store", env, tmp_path_factory.mktemp("event-store"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def _cache(
    tmp_path_factory: pytest.TempPathFactory,
    _durable_redis: PrivateRedis,
    _rabbitmq_server: PrivateRabbitMQ,
) -> Iterator[Service]:
    env = cache_env(_durable_redis, _rabbitmq_server)
    service = Service("cache", env, tmp_path_factory.mktemp("cache"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
async def event_store(
    _event_store: Service, postgres_server: PrivatePostgres, rabbitmq_server: PrivateRabbitMQ
) -> Service:
    """`outrigger serve event-store` on the private PostgreSQL and RabbitMQ, ready."""
    _event_store.start()
    await _event_store.ready()
    return _event_store


@pytest.fixture
async def cache(
    _cache: Service, durable_redis: PrivateRedis, rabbitmq_server: PrivateRabbitMQ
) -> Service:
    """`outrigger serve cache` on the private Redis and RabbitMQ, ready."""
    _cache.start()
    await _cache.ready()
    return _cache
