"""What the audit API tests share: the app on each backend behind an in-process client.

`running()` builds the app inline with the settings a test needs, runs its lifespan and puts an
in-process HTTP client in front of it holding every scope. The embedded backend is a migrated
SQLite copy, the real one the session's PostgreSQL database (`audit_postgres_url`); the bus is
in memory, on a name of its own per app, unless a test gives another.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from outrigger.notes import open_checkpoint
from outrigger.testing import bearer, unique
from services.audit.app import build_app
from services.audit.settings import AuditSettings
from tests.audit import rfc9162
from tests.databases import copy_sqlite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from fastapi import FastAPI

SECRET = "audit-tests-secret-of-32-bytes-or-more"
PROBLEM = "application/problem+json"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SIGNING_KEY = base64.b64encode(os.urandom(32)).decode()


def settings_for(database_url: str, data_dir: Path, **overrides: Any) -> AuditSettings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "data_dir": data_dir,
        "database_url": database_url,
        "amqp_url": f"memory://{unique('bus')}",
        "audit_signing_key": SIGNING_KEY,
        "audit_election_interval_seconds": 0.1,
        **overrides,
    }
    return AuditSettings(**values)


def database_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of `backend`: a SQLite copy, or the session's PostgreSQL one."""
    if backend == "postgres":
        url: str = request.getfixturevalue("audit_postgres_url")
        return url
    return copy_sqlite(request.getfixturevalue("audit_sqlite_template"), tmp_path)


@dataclass
class Api:
    """The audit app, running, behind an in-process client holding every scope."""

    app: FastAPI
    settings: AuditSettings
    http: httpx.AsyncClient

    def as_(self, *scopes: str, subject: str = "tester") -> dict[str, str]:
        return bearer(self.settings, *scopes, subject=subject)

    async def write(self, *records: dict[str, Any], **headers: str) -> httpx.Response:
        body: dict[str, Any] = {"records": list(records)} if len(records) != 1 else records[0]
        return await self.http.post("/v1/records", json=body, headers=headers)

    async def receipts(self, *records: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.write(*records)
        assert response.status_code in (200, 201), response.text
        receipts: list[dict[str, Any]] = response.json()["receipts"]
        return receipts


@contextlib.asynccontextmanager
async def running(settings: AuditSettings) -> AsyncIterator[Api]:
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://audit", headers=bearer(settings)
        ) as http:
            yield Api(app, settings, http)


def record(tenant: str = "default", **fields: Any) -> dict[str, Any]:
    """A valid record of `tenant` with an id no other test uses; `fields` override."""
    return {
        "id": unique("rec"),
        "source": "tests.audit",
        "type": "document.updated",
        "actor": "alice",
        "action": "update",
        "resource": "documents/1",
        "tenant": tenant,
        "data": {"title": "Résumé"},
        **fields,
    }


def opened(checkpoint: dict[str, Any]) -> tuple[str, int, bytes]:
    """`(origin, size, root)` of a checkpoint document whose note verifies with its key, checked
    against the document's own fields."""
    origin, size, root = open_checkpoint(checkpoint["note"], checkpoint["verifier_key"])
    assert (size, root.hex()) == (checkpoint["tree_size"], checkpoint["root_hash"])
    return origin, size, root


def proves(receipt: dict[str, Any], proof: dict[str, Any], root: bytes) -> bool:
    """Whether `proof` (an inclusion proof answer) shows the receipt's leaf under `root`, by the
    independent RFC 9162 verifier."""
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    return rfc9162.verify_inclusion(
        receipt["index"], proof["tree_size"], bytes.fromhex(receipt["leaf_hash"]), hashes, root
    )


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Returns once `check()` is true; fails after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)
