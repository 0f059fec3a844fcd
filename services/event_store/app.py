"""Wiring: the event store's app, with its storage, sequencer, bus, relay, subscriptions, probes.

`outrigger serve event-store` (or `python -m services.event_store`) calls `build_app()`. The
database URL's scheme picks the storage: PostgreSQL (with the elected sequencer and relay leader)
or the embedded SQLite file. Everything that does I/O is built in the lifespan and closed there,
in reverse order.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import MetaData

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.db import Database, build_engine
from outrigger.http import add_readiness_check, create_app
from outrigger.settings import load_settings
from outrigger.stealth import Keyring, SqlSubjectKeyStore, Stealth, subject_keys_table
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.adapters.postgres_sequencer import PostgresSequencer
from services.event_store.adapters.sqlite import SCHEMA, SqliteEventStore
from services.event_store.api import HOT_ROUTES, ROUTERS, EventStoreService
from services.event_store.metrics import GaugeRefresher, MeasuredEventStore
from services.event_store.relay import PostgresLeadership, Relay, SoleLeadership
from services.event_store.settings import EventStoreSettings
from services.event_store.subjects import ShreddingEventStore, SubjectShredder
from services.event_store.subscriptions import LogSubscriptions, LogTail

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from outrigger.bus import MessageBus
    from services.event_store.domain import EventStore
    from services.event_store.relay import Leadership

SERVICE = "event-store"
DESCRIPTION = """Streams of events with optimistic concurrency and idempotent appends, one
gap-free global log, Server-Sent Events subscriptions, snapshots, crypto-shredding of personal
data, and every event relayed to RabbitMQ (`outrigger.events`, routing key `<category>.<type>`)."""


def build_app(settings: EventStoreSettings | None = None) -> FastAPI:
    """The event store; settings from the environment unless given (tests pass them)."""
    settings = settings or load_settings(EventStoreSettings)
    keyring = Keyring.from_settings(settings)  # a bad key setting fails here, before serving

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            storage = await _open_storage(settings, stack)
            bus = connect_bus(settings.amqp_url, source=SERVICE, prefetch=settings.amqp_prefetch)
            stack.push_async_callback(bus.close)
            await bus.start()
            keys = SqlSubjectKeyStore(
                storage.keys.engine, subject_keys_table(MetaData(), schema=SCHEMA)
            )
            shredder = SubjectShredder(Stealth(keyring, keys))
            raw = storage.store
            store = MeasuredEventStore(ShreddingEventStore(raw, shredder))
            subscriptions = await _subscriptions(settings, raw, shredder, stack)
            await _start_relay(settings, raw, bus, storage.leadership, stack)
            gauges = GaugeRefresher(
                raw,
                relay_checkpoint=settings.event_store_relay_checkpoint,
                interval=settings.event_store_metrics_interval_seconds,
            )
            stack.push_async_callback(gauges.stop)
            await gauges.start()
            app.state.event_store = EventStoreService(
                store=store,
                subscriptions=subscriptions,
                shredder=shredder,
                audit=AuditTrail(bus, SERVICE),
                heartbeat_seconds=settings.event_store_sse_heartbeat_seconds,
                send_timeout_seconds=settings.event_store_sse_send_timeout_seconds,
            )
            add_readiness_check(app, "database", raw.head_position)
            add_readiness_check(app, "bus", bus.check)
            yield

    app = create_app(SERVICE, settings, routers=ROUTERS, lifespan=lifespan, description=DESCRIPTION)
    app.router.routes[0:0] = HOT_ROUTES  # matched before any router (see `streams.APPEND_ROUTE`)
    return app


@dataclass(frozen=True)
class _Storage:
    store: EventStore
    keys: Database
    leadership: Leadership


async def _open_storage(settings: EventStoreSettings, stack: contextlib.AsyncExitStack) -> _Storage:
    url = settings.database_url
    if not url.startswith("postgresql"):
        database = Database.from_settings(settings, schemas=[SCHEMA])
        stack.push_async_callback(database.dispose)
        sqlite = SqliteEventStore(database)
        stack.push_async_callback(sqlite.close)
        return _Storage(sqlite, database, SoleLeadership())
    store = await PostgresEventStore.from_settings(settings)
    stack.push_async_callback(store.close)
    pool = settings.event_store_subject_keys_pool_size
    keys = Database(build_engine(url, pool_size=pool, max_overflow=0))
    stack.push_async_callback(keys.dispose)
    election = settings.event_store_sequencer_election_interval_seconds
    if settings.event_store_sequencer_enabled:
        sequencer = PostgresSequencer(
            url,
            batch_size=settings.event_store_sequencer_batch_size,
            poll_interval=settings.event_store_sequencer_poll_interval_seconds,
            election_interval=election,
        )
        stack.push_async_callback(sequencer.stop)
        await sequencer.start()
    leadership = PostgresLeadership(url, settings.event_store_relay_checkpoint, interval=election)
    return _Storage(store, keys, leadership)


async def _subscriptions(
    settings: EventStoreSettings,
    store: EventStore,
    shredder: SubjectShredder,
    stack: contextlib.AsyncExitStack,
) -> LogSubscriptions:
    buffered = settings.event_store_sse_max_buffered_events
    batch_size = settings.event_store_sse_batch_size
    idle_wait = settings.event_store_sse_idle_wait_seconds
    tail = LogTail(
        store,
        batch_size=min(batch_size, buffered),
        idle_wait=idle_wait,
        overflow_grace=settings.event_store_sse_overflow_grace_seconds,
    )
    stack.push_async_callback(tail.close)
    return LogSubscriptions(
        store, tail, shredder.reveal, batch_size=batch_size, max_buffered=buffered
    )


async def _start_relay(
    settings: EventStoreSettings,
    store: EventStore,
    bus: MessageBus,
    leadership: Leadership,
    stack: contextlib.AsyncExitStack,
) -> None:
    if not settings.event_store_relay_enabled:
        return
    relay = Relay(
        store,
        bus,
        leadership,
        exchange=settings.event_store_relay_exchange,
        checkpoint=settings.event_store_relay_checkpoint,
        batch_size=settings.event_store_relay_batch_size,
        idle_wait=settings.event_store_relay_idle_wait_seconds,
        linger=settings.event_store_relay_linger_seconds,
        retry_seconds=settings.event_store_relay_retry_seconds,
    )
    stack.push_async_callback(relay.stop)
    await relay.start()
