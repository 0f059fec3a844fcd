"""What the event-store API tests share: the app on each backend, tokens, an audit inbox, and a
real server for the streaming tests.

`running()` builds the app inline with the settings a test needs, runs its lifespan and puts an
in-process HTTP client in front of it. The embedded backend is a migrated SQLite copy with the
in-memory bus; the real one is the session's PostgreSQL database (with the sequencer). The bus is
in memory, on a name of its own per app, so audit records can be read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from outrigger.auth import ALL_SCOPES, TokenIssuer
from outrigger.bus import Ack, connect_bus
from services.event_store.app import build_app
from services.event_store.settings import EventStoreSettings
from tests.databases import copy_sqlite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from fastapi import FastAPI

    from outrigger.bus import Delivery, MessageBus

SECRET = "event-store-tests-secret-of-32-bytes-or-more"
PROBLEM = "application/problem+json"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def settings_for(database_url: str, data_dir: Path, **overrides: Any) -> EventStoreSettings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "data_dir": data_dir,
        "database_url": database_url,
        "amqp_url": f"memory://{unique('bus')}",
        "event_store_relay_enabled": False,
        "event_store_sequencer_poll_interval_seconds": 0.002,
        "event_store_sequencer_election_interval_seconds": 0.2,
        **overrides,
    }
    return EventStoreSettings(**values)


def bearer(settings: EventStoreSettings, *scopes: str, subject: str = "tester") -> dict[str, str]:
    token = TokenIssuer.from_settings(settings).mint(subject, scopes or sorted(ALL_SCOPES), 300)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class AuditInbox:
    """Every audit record the event store publishes while the app runs."""

    records: list[Delivery] = field(default_factory=list)

    async def __call__(self, delivery: Delivery) -> Ack:
        self.records.append(delivery)
        return Ack()

    async def wait(self, count: int) -> list[Delivery]:
        for _ in range(500):
            if len(self.records) >= count:
                return self.records
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.records)} audit records, not {count}")


@dataclass
class Api:
    """The event store app, running, behind an in-process client holding every scope."""

    app: FastAPI
    settings: EventStoreSettings
    http: httpx.AsyncClient
    audit: AuditInbox

    def as_(self, *scopes: str, subject: str = "tester") -> dict[str, str]:
        return bearer(self.settings, *scopes, subject=subject)


@contextlib.asynccontextmanager
async def running(settings: EventStoreSettings) -> AsyncIterator[Api]:
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        bus: MessageBus = connect_bus(settings.amqp_url, source="tests")
        await bus.start()
        audit = AuditInbox()
        await bus.subscribe(unique("audit"), [("outrigger.audit", "event-store.#")], audit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://event-store", headers=bearer(settings)
        ) as http:
            yield Api(app, settings, http, audit)
        await bus.close()


def database_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of `backend`: a SQLite copy, or the session's PostgreSQL one."""
    if backend == "postgres":
        url: str = request.getfixturevalue("event_store_postgres_url")
        return url
    return copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(uvicorn.Server):
    """Leaves the process's signal handlers alone (pytest owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI, *, send_buffer: int | None = None) -> AsyncIterator[str]:
    """`app` served by uvicorn on a free port of 127.0.0.1; yields its base URL.

    `send_buffer` shrinks the accepted sockets' send buffers (and sets TCP_NODELAY, which asyncio
    leaves unset on sockets uvicorn is given), so a client that stops reading blocks the server
    after a few frames rather than megabytes.
    """
    listener = socket.socket()
    if send_buffer is not None:  # accepted sockets inherit both
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=2)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                assert not task.done(), "the server stopped while starting"
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        listener.close()


async def append(
    api: Api, stream_id: str, *events: dict[str, Any], expected: Any = "any"
) -> httpx.Response:
    body = {"expected_version": expected, "events": list(events)}
    return await api.http.post(f"/v1/streams/{stream_id}/events", json=body)


def event(n: int = 0, event_type: str = "Happened", **fields: Any) -> dict[str, Any]:
    return {"type": event_type, "data": {"n": n}, **fields}
