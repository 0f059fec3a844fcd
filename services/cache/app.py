"""Wiring: the cache's app, with the store, the bus, the invalidation consumer and the probes.

`outrigger serve cache` (or `python -m services.cache`) calls `build_app()`. Everything that
does I/O is built in the lifespan and closed there, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.http import create_app, dependency
from outrigger.settings import load_settings
from outrigger.tasks import stop_task
from services.cache.adapters import build_store
from services.cache.api import HOT_ROUTES, ROUTERS
from services.cache.api.context import Cache
from services.cache.consumers import QUEUE, subscribe_invalidations
from services.cache.domain import MAX_BATCH_KEYS
from services.cache.metrics import watch_store
from services.cache.settings import CacheSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

STATS_INTERVAL_SECONDS = 5.0
BATCH_ENTRY_OVERHEAD_BYTES = 4096
DESCRIPTION = """Namespaced entries with TTLs, ETags, tags, batches and stampede protection,
and fenced distributed locks, on Redis (or in memory with `OUTRIGGER_REDIS_URL=memory://`).
Entries tagged `stream:<id>` are invalidated when the event store records an event on that
stream."""


def body_limit(settings: CacheSettings) -> int:
    """The app's request body limit: an `:mset` of the largest batch in base64 JSON. A PUT
    enforces the (smaller) value limit itself, while it reads the body."""
    batch = math.ceil(settings.cache_max_batch_bytes * 4 / 3)
    return max(settings.cache_max_value_bytes, batch + MAX_BATCH_KEYS * BATCH_ENTRY_OVERHEAD_BYTES)


def build_app(settings: CacheSettings | None = None, *, invalidation_queue: str = QUEUE) -> FastAPI:
    """The cache service; settings from the environment unless given (tests pass them)."""
    settings = settings or load_settings(CacheSettings)
    settings = settings.model_copy(update={"max_body_bytes": body_limit(settings)})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            store = build_store(settings)
            stack.push_async_callback(store.close)
            await stack.enter_async_context(
                dependency(app, "cache", check=store.check, start=store.start)
            )
            bus = connect_bus(settings.amqp_url, source="cache", prefetch=settings.amqp_prefetch)
            stack.push_async_callback(bus.close)  # which cancels the subscription
            audit = AuditTrail(bus, "cache")

            async def start_bus() -> None:
                await bus.start()
                await subscribe_invalidations(bus, store, audit, queue=invalidation_queue)

            # Without the broker, entries are still served; invalidations wait for it.
            await stack.enter_async_context(
                dependency(app, "bus", check=bus.check, start=start_bus, required=False)
            )
            watcher = asyncio.create_task(watch_store(store, STATS_INTERVAL_SECONDS))
            stack.push_async_callback(stop_task, watcher)
            app.state.cache = Cache(store, audit, settings.cache_max_value_bytes)
            yield

    app = create_app("cache", settings, routers=ROUTERS, lifespan=lifespan, description=DESCRIPTION)
    app.router.routes[0:0] = HOT_ROUTES  # matched before any router (see `entries.READ_ROUTE`)
    return app
