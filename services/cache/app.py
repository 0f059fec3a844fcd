"""Wiring: the cache's app, with the stores, the bus, the use cases, the invalidation consumer
and the probes.

`outrigger serve cache` (or `python -m services.cache`) calls `build_app()`. Everything that
does I/O is built in the lifespan and closed there, in reverse order.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.http import create_app, dependency
from outrigger.settings import load_settings
from outrigger.tasks import Periodic
from services.cache.adapters import build_stores
from services.cache.api import ROUTERS, ROUTES
from services.cache.api.openapi import document_ttl_limits
from services.cache.consumers import QUEUE, subscribe_invalidations
from services.cache.domain import MAX_BATCH_KEYS
from services.cache.metrics import CacheMetrics, StoreWatch
from services.cache.service import CacheService, LockService
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
            store, locks = build_stores(settings)
            stack.push_async_callback(store.close)
            await stack.enter_async_context(
                dependency(app, "cache", check=store.check, start=store.start)
            )
            bus = connect_bus(settings.amqp_url, source="cache", prefetch=settings.amqp_prefetch)
            stack.push_async_callback(bus.close)  # which cancels the subscription
            audit = AuditTrail(bus, "cache")
            metrics = CacheMetrics(
                settings.cache_metric_namespaces, settings.cache_metric_namespace_limit
            )
            cache = CacheService(store, settings.limits(), audit, metrics)

            async def start_bus() -> None:
                await bus.start()
                await subscribe_invalidations(bus, cache, queue=invalidation_queue)

            # Without the broker, entries are still served; invalidations wait for it.
            await stack.enter_async_context(
                dependency(app, "bus", check=bus.check, start=start_bus, required=False)
            )
            watch = Periodic(StoreWatch(store, metrics), STATS_INTERVAL_SECONDS, name="cache-stats")
            watch.start()
            stack.push_async_callback(watch.stop)
            app.state.cache = cache
            app.state.locks = LockService(locks, audit, metrics)
            yield

    app = create_app("cache", settings, routers=ROUTERS, lifespan=lifespan, description=DESCRIPTION)
    app.router.routes[0:0] = ROUTES  # matched before any router (see `api.ROUTES`)
    document_ttl_limits(app, settings.limits())
    return app
