"""What the Server-Sent Events tests share: the app served by a real uvicorn server, with its
audit inbox.

The server's sockets, and those of `slow_client`, have small fixed kernel buffers (no
autotuning), so a client that stops reading blocks the server after a few hundred kilobytes
on any machine, and the slow-client tests need not write megabytes to get there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from outrigger.bus import connect_bus
from outrigger.testing import AuditInbox, SseReader, audit_inbox, bearer, serving
from services.event_store.app import build_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from outrigger.bus import MessageBus
    from services.event_store.settings import EventStoreSettings

SOCKET_BUFFER_BYTES = 32 * 1024
WAIT_SECONDS = 10.0


@dataclass
class Served:
    """The event store behind a real uvicorn server, with a client holding every scope."""

    url: str
    settings: EventStoreSettings
    http: httpx.AsyncClient
    audit: AuditInbox

    def as_(self, *scopes: str, subject: str = "tester") -> dict[str, str]:
        return bearer(self.settings, *scopes, subject=subject)

    @contextlib.asynccontextmanager
    async def slow_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """Another client, whose sockets have small receive buffers."""
        option = (socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
        transport = httpx.AsyncHTTPTransport(socket_options=[option])
        async with httpx.AsyncClient(
            base_url=self.url, headers=bearer(self.settings), transport=transport
        ) as client:
            yield client

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        path: str = "/v1/subscribe",
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> AsyncIterator[SseReader]:
        """An open SSE response of `path` (after checking it is one)."""
        client = client or self.http
        async with client.stream("GET", path, params=params, headers=headers) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield SseReader(response)


@contextlib.asynccontextmanager
async def served(settings: EventStoreSettings) -> AsyncIterator[Served]:
    """The app built from `settings`, served by uvicorn on a free port of 127.0.0.1."""
    async with serving(build_app(settings), send_buffer=SOCKET_BUFFER_BYTES) as url:
        bus: MessageBus = connect_bus(settings.amqp_url, source="tests")
        await bus.start()
        try:
            audit = await audit_inbox(bus, "event-store")
            async with httpx.AsyncClient(
                base_url=url, headers=bearer(settings), timeout=WAIT_SECONDS
            ) as http:
                yield Served(url, settings, http, audit)
        finally:
            await bus.close()


async def post_events(
    http: httpx.AsyncClient, stream_id: str, *events: dict[str, Any], sequenced: bool = False
) -> dict[str, Any]:
    """Appends `events`; with `sequenced`, also waits until they are in the global log, so a
    subscription opened next reads them while catching up (before its `live` marker)."""
    response = await http.post(f"/v1/streams/{stream_id}/events", json={"events": list(events)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    if sequenced:
        read = f"/v1/streams/{stream_id}/events"
        params = {"from_version": body["first_version"], "limit": len(events)}
        async with asyncio.timeout(10):
            while True:
                page = (await http.get(read, params=params)).json()
                if all(e["global_position"] is not None for e in page["events"]):
                    return body
                await asyncio.sleep(0.01)
    return body
