"""Private PostgreSQL, Redis and RabbitMQ instances for the tests that break a server.

Each one runs on free ports of 127.0.0.1 with its data in a temporary directory of its own, is
stopped, killed, paused and restarted by the test that owns it, and is removed by `close()`. The
servers on the standard ports (what `make test` shares with the developer) are never touched.
Run as root, PostgreSQL and RabbitMQ run as their own system users, as they require.

    with private_postgres() as postgres:
        postgres.stop("immediate")
        postgres.start()
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Protocol, TypeVar

from outrigger.testing.servers.postgres import PrivatePostgres
from outrigger.testing.servers.rabbitmq import PrivateRabbitMQ
from outrigger.testing.servers.redis import PrivateRedis

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "PrivatePostgres",
    "PrivateRabbitMQ",
    "PrivateRedis",
    "private_postgres",
    "private_rabbitmq",
    "private_redis",
]


class _Server(Protocol):
    def start(self) -> None: ...
    def close(self) -> None: ...


S = TypeVar("S", bound=_Server)


@contextlib.contextmanager
def _running(server: S) -> Iterator[S]:
    try:
        server.start()
        yield server
    finally:
        server.close()


def private_postgres() -> contextlib.AbstractContextManager[PrivatePostgres]:
    return _running(PrivatePostgres())


def private_redis(*, appendonly: bool = False) -> contextlib.AbstractContextManager[PrivateRedis]:
    return _running(PrivateRedis(appendonly=appendonly))


def private_rabbitmq(
    *, prometheus: bool = False
) -> contextlib.AbstractContextManager[PrivateRabbitMQ]:
    return _running(PrivateRabbitMQ(prometheus=prometheus))
