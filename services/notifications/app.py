"""Wiring: the hub's app, with history, presence, the hub, the trim loop, the bus (ingestion
and audit records) and the probes.

`outrigger serve notifications` (or `python -m services.notifications`) calls `build_app()`.
Everything that does I/O is built in the lifespan and closed there, in reverse order. When the
server stops, the kit ends every open stream with `event: shutdown` first (`end_streams`), then
the lifespan closes the hub.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.http import create_app, dependency
from outrigger.settings import load_settings
from outrigger.tasks import Periodic
from services.notifications.adapters import build_history
from services.notifications.api import ROUTERS, ROUTES
from services.notifications.consumers import MessageIngest, subscribe_messages
from services.notifications.domain import MAX_DATA_BYTES
from services.notifications.settings import NotificationsSettings
from services.notifications.usecases import Hub, Limits, NotificationsService
from services.notifications.usecases.trimming import HistoryTrim

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

BODY_OVERHEAD_BYTES = 2048  # a publish body: its data, and the event name and id around it
DESCRIPTION = """Channels with history and live Server-Sent Events: publish to a channel (over
HTTP or RabbitMQ), subscribe to several channels and patterns on one stream, resume with
`Last-Event-ID` on any replica. History lives in Redis (or in memory with
`OUTRIGGER_REDIS_URL=memory://`)."""


def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """The notifications service; settings from the environment unless given (tests pass them)."""
    settings = settings or load_settings(NotificationsSettings)
    settings = settings.model_copy(update={"max_body_bytes": MAX_DATA_BYTES + BODY_OVERHEAD_BYTES})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            history, presence = build_history(settings)
            stack.push_async_callback(history.close)
            await stack.enter_async_context(
                dependency(app, "history", check=history.check, start=history.start)
            )
            hub = Hub(
                history,
                presence,
                Limits(
                    settings.notifications_queue_size, settings.notifications_slow_consumer_policy
                ),
                heartbeat_seconds=settings.notifications_heartbeat_seconds,
                send_timeout_seconds=settings.notifications_send_timeout_seconds,
                presence_seconds=settings.notifications_presence_interval_seconds,
            )
            await hub.start()
            stack.push_async_callback(hub.stop)
            trim = Periodic(
                HistoryTrim(history),
                settings.notifications_trim_interval_seconds,
                name="notifications-trim",
            )
            trim.start()
            stack.push_async_callback(trim.stop)
            bus = connect_bus(
                settings.amqp_url, source="notifications", prefetch=settings.amqp_prefetch
            )
            stack.push_async_callback(bus.close)  # which cancels the ingest subscription
            service = NotificationsService(history, presence, hub, AuditTrail(bus, "notifications"))
            ingest = MessageIngest(service, events_exchange=settings.notifications_events_exchange)

            async def start_bus() -> None:
                await bus.start()
                await subscribe_messages(
                    bus,
                    ingest,
                    events=settings.notifications_ingest_events,
                    queue=settings.notifications_ingest_queue,
                    exchange=settings.notifications_exchange,
                )

            # Without the broker, streams and HTTP publishing go on; ingestion waits for it.
            await stack.enter_async_context(
                dependency(app, "bus", check=bus.check, start=start_bus, required=False)
            )
            app.state.notifications = service
            yield

    app = create_app(
        "notifications", settings, routers=ROUTERS, lifespan=lifespan, description=DESCRIPTION
    )
    app.router.routes[0:0] = ROUTES  # matched before any router (see `api.ROUTES`)
    return app
