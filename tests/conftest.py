"""Shared fixtures: where the real servers are, and the order disruptive tests run in.

Real servers are required, never optional: a test marked `postgres`, `redis` or `rabbitmq` fails
when its server does not answer, so a broken machine cannot pass CI by skipping.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

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


@pytest.fixture
def amqp_url() -> str:
    return _require(AMQP_URL, 5672)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop a shared server run last, so the others never see it down."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
