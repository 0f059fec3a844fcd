"""What the hub's API tests share: the app served by a real uvicorn server (the in-memory
history), a client holding every scope and channel, its audit inbox, and helpers to publish and
to subscribe.

The server's sockets, and those of `slow_client`, have small fixed kernel buffers, so a client
that stops reading blocks the server after a few hundred kilobytes on any machine.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import REGISTRY

from outrigger.bus import connect_bus
from outrigger.testing import AuditInbox, SseReader, audit_inbox, bearer, serving, unique
from services.notifications.app import build_app
from services.notifications.settings import NotificationsSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from outrigger.bus import MessageBus
    from outrigger.sse import Frame

SECRET = "notifications-test-secret-of-32-bytes!"
PROBLEM = "application/problem+json"
SOCKET_BUFFER_BYTES = 32 * 1024
WAIT_SECONDS = 10.0
EVERY = ("notify:publish", "notify:subscribe")


def hub_settings(**overrides: Any) -> NotificationsSettings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "amqp_url": f"memory://{unique('bus')}",
        "access_log": "errors",
    }
    values.update(overrides)
    return NotificationsSettings(**values)


@dataclass
class Hub:
    """The hub behind a real uvicorn server, with a client holding every scope and channel."""

    url: str
    settings: NotificationsSettings
    http: httpx.AsyncClient
    audit: AuditInbox

    def as_(
        self, *scopes: str, channels: Sequence[str] = ("**",), subject: str = "tester"
    ) -> dict[str, str]:
        return bearer(self.settings, *scopes, channels=channels, subject=subject)

    def token(self, *scopes: str, channels: Sequence[str] = ("**",)) -> str:
        return self.as_(*scopes, channels=channels)["Authorization"].removeprefix("Bearer ")

    async def publish(
        self, channel: str, data: Any = None, *, event: str = "test", id: str | None = None
    ) -> str:
        """Publishes and returns the history id."""
        body = {"event": event, "data": data, **({"id": id} if id is not None else {})}
        answer = await self.http.post(f"/v1/channels/{channel}/events", json=body)
        assert answer.status_code in (200, 201), answer.text
        history_id: str = answer.json()["id"]
        return history_id

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        *channels: str,
        headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        **params: str,
    ) -> AsyncIterator[SseReader]:
        """An open stream of `channels` (registered with the hub once this yields)."""
        client = client or self.http
        query = {"channel": list(channels), **params}
        async with client.stream("GET", "/v1/sse", params=query, headers=headers) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            yield SseReader(response)

    @contextlib.asynccontextmanager
    async def slow_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """Another client, whose sockets have small receive buffers."""
        option = (socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
        transport = httpx.AsyncHTTPTransport(socket_options=[option])
        async with httpx.AsyncClient(
            base_url=self.url, headers=self.as_(*EVERY), transport=transport
        ) as client:
            yield client


@contextlib.asynccontextmanager
async def served(settings: NotificationsSettings | None = None) -> AsyncIterator[Hub]:
    """The hub built from `settings`, served by uvicorn on a free port of 127.0.0.1."""
    settings = settings or hub_settings()
    async with serving(build_app(settings), send_buffer=SOCKET_BUFFER_BYTES) as url:
        bus: MessageBus = connect_bus(settings.amqp_url, source="tests")
        await bus.start()
        try:
            audit = await audit_inbox(bus, "notifications")
            headers = bearer(settings, *EVERY, channels=["**"])
            async with httpx.AsyncClient(
                base_url=url, headers=headers, timeout=WAIT_SECONDS
            ) as http:
                yield Hub(url, settings, http, audit)
        finally:
            await bus.close()


def ids(frames: list[Frame]) -> list[str]:
    return [frame.id or "" for frame in frames]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def messages(stream: SseReader, count: int) -> list[Frame]:
    """The next `count` frames that are not heartbeats (the hub names every message)."""
    return [await stream.message() for _ in range(count)]
