"""Shared fixtures: where the real servers are, and private ones for the tests that break one.

Real servers are required, never optional: a test marked `postgres`, `redis` or `rabbitmq` fails
when its server does not answer, so a broken machine cannot pass CI by skipping. A test that
stops, kills or pauses a server takes a private instance (`postgres_server`, `redis_server`,
`rabbitmq_server`): started once per session on free ports, running again before each test
that takes it, removed at the end. The shared servers are only ever used.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from outrigger.testing.broker import LEFT
from outrigger.testing.servers import private_postgres, private_rabbitmq, private_redis

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outrigger.testing.broker import LEFT
from outrigger.testing.servers import PrivatePostgres, PrivateRabbitMQ, PrivateRedis

POSTGRES_URL = os.environ.get(
    "OUTRIGGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("OUTRIGGER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("OUTRIGGER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _require(url: str, default_port: int) -> str:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"{parts.scheme} server at {host}:{port} does not answer ({exc}); start it")
    return url


@pytest.fixture(autouse=True, scope="session")
def _data_home_of_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never touch the developer's data directory (`make run`'s database and keys)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-home")))
        yield


@pytest.fixture
def postgres_url() -> str:
    return _require(POSTGRES_URL, 5432)


@pytest.fixture
def redis_url() -> str:
    return _require(REDIS_URL, 6379)


@functools.cache
def _amqp_answers(url: str) -> str | None:
    """Why the broker at `url` does not speak AMQP, or None: an open port is not enough (a
    broker out of file descriptors accepts connections and never answers them)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 5672), timeout=5) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = sock.recv(7)
    except OSError as exc:
        return f"no AMQP greeting ({exc})"
    return None if frame[:1] == b"\x01" else f"no AMQP greeting (got {frame!r})"


@pytest.fixture
def amqp_url() -> str:
    url = _require(AMQP_URL, 5672)
    if problem := _amqp_answers(url):
        pytest.fail(f"the RabbitMQ at {url} does not answer: {problem}; restart it")
    return url


@pytest.fixture(autouse=True, scope="session")
def _shared_broker_left_tidy() -> Iterator[None]:
    """Queues helpers declared on the shared broker with no teardown of their own (the audit
    inbox) are removed at the end, so runs do not pile them up on the developer's broker."""
    yield
    asyncio.run(LEFT.remove(AMQP_URL))


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def _redis_server() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@pytest.fixture(scope="session")
def _rabbitmq_server() -> Iterator[PrivateRabbitMQ]:
    with private_rabbitmq() as server:
        yield server


@pytest.fixture
def postgres_server(_postgres_server: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster (superuser `postgres`, trust), running; break it at will."""
    _postgres_server.start()
    yield _postgres_server
    _postgres_server.start()


@pytest.fixture
def redis_server(_redis_server: PrivateRedis) -> Iterator[PrivateRedis]:
    """A private Redis without persistence, running; break it at will."""
    _redis_server.resume()
    _redis_server.start()
    yield _redis_server
    _redis_server.resume()
    _redis_server.start()


@pytest.fixture
def rabbitmq_server(_rabbitmq_server: PrivateRabbitMQ) -> Iterator[PrivateRabbitMQ]:
    """A private RabbitMQ node (guest/guest), running; break it at will."""
    _rabbitmq_server.start()
    yield _rabbitmq_server
    _rabbitmq_server.start()
