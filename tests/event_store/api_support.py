"""What the event-store API tests share: the app on each backend behind an in-process client.

`running()` builds the app inline with the settings a test needs, runs its lifespan and puts an
in-process HTTP client in front of it. The embedded backend is a migrated SQLite copy with the
in-memory bus; the real one is the session's PostgreSQL database (with the sequencer). The bus is
in memory, on a name of its own per app, so audit records can be read back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from outrigger.bus import connect_bus
from outrigger.testing import AuditInbox, audit_inbox, bearer, unique
from services.event_store.app import build_app
from services.event_store.settings import EventStoreSettings
from tests.databases import copy_sqlite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from fastapi import FastAPI

    from outrigger.bus import MessageBus

SECRET = "event-store-tests-secret-of-32-bytes-or-more"
PROBLEM = "application/problem+json"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


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
        audit = await audit_inbox(bus, "event-store")
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


async def append(
    api: Api, stream_id: str, *events: dict[str, Any], expected: Any = "any"
) -> httpx.Response:
    body = {"expected_version": expected, "events": list(events)}
    return await api.http.post(f"/v1/streams/{stream_id}/events", json=body)


def event(n: int = 0, event_type: str = "Happened", **fields: Any) -> dict[str, Any]:
    return {"type": event_type, "data": {"n": n}, **fields}
