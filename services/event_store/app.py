"""Wiring: the event store's app, with its storage, sequencer, bus, relay, subscriptions, probes.

`outrigger serve event-store` (or `python -m services.event_store`) calls `build_app()`. The
database URL's scheme picks the storage: PostgreSQL (with the elected sequencer and relay leader)
or the embedded SQLite file. Everything that does I/O is built in the lifespan and closed there,
in reverse order.

A process may also run without the API (`OUTRIGGER_EVENT_STORE_API_ENABLED=false`): the relay
and the sequencer alone, on a core of their own, beside API processes that run with
`OUTRIGGER_EVENT_STORE_RELAY_ENABLED=false`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.db import Database, build_engine, session_url
from outrigger.http import create_app, dependency
from outrigger.leadership import AdvisoryLockLeadership, SoleLeadership
from outrigger.settings import load_settings
from outrigger.stealth import Keyring, SqlSubjectKeyStore, Stealth, subject_keys_table
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.adapters.postgres_connection import connect, open_pool, pool_sizes
from services.event_store.adapters.sqlite import SCHEMA, SqliteEventStore
from services.event_store.api import ROUTERS
from services.event_store.settings import EventStoreSettings
from services.event_store.usecases import (
    EventStoreService,
    LogGauges,
    LogSubscriptions,
    LogTail,
    Relay,
    Sequencer,
    SubjectShredder,
)
from services.event_store.usecases.relay import election as relay_election
from services.event_store.usecases.sequencer import ELECTION as SEQUENCER_ELECTION

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from fastapi import FastAPI

    from outrigger.bus import MessageBus
    from outrigger.leadership import Leadership
    from services.event_store.domain import EventStore, SequencedLog

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
            store = storage.store
            await stack.enter_async_context(dependency(app, "database", check=storage.check))
            bus = connect_bus(settings.amqp_url, source=SERVICE, prefetch=settings.amqp_prefetch)
            stack.push_async_callback(bus.close)
            # Appends do without the broker: the relay publishes what it missed once it is back.
            await stack.enter_async_context(
                dependency(app, "bus", check=bus.check, start=bus.start, required=False)
            )
            keys = SqlSubjectKeyStore(
                storage.keys.engine, subject_keys_table(MetaData(), schema=SCHEMA)
            )
            await _start_background(settings, storage, bus, stack)
            if settings.event_store_api_enabled:
                app.state.event_store = EventStoreService(
                    store,
                    SubjectShredder(Stealth(keyring, keys)),
                    AuditTrail(bus, SERVICE),
                    _subscriptions(settings, store, stack),
                )
            yield

    routers = ROUTERS if settings.event_store_api_enabled else ()
    return create_app(
        SERVICE, settings, routers=routers, lifespan=lifespan, description=DESCRIPTION
    )


@dataclass(frozen=True)
class _Storage:
    store: EventStore
    sequenced: SequencedLog | None
    keys: Database
    leadership: Callable[[str], Leadership]
    check: Callable[[], Awaitable[Any]]


async def _open_storage(settings: EventStoreSettings, stack: contextlib.AsyncExitStack) -> _Storage:
    """Opens the storage without waiting for its server: a database that is down at start-up
    makes the service not ready, not gone (the pool and the elections connect when it is up)."""
    if not settings.database_url.startswith("postgresql"):
        database = Database.from_settings(settings, schemas=[SCHEMA])
        stack.push_async_callback(database.dispose)
        sqlite = SqliteEventStore(database)
        stack.push_async_callback(sqlite.close)
        return _Storage(sqlite, None, database, SoleLeadership, database.check)
    url = session_url(settings)  # every connection below gets the session timeouts
    pool = await open_pool(url, **pool_sizes(settings))
    store = PostgresEventStore(pool, url)
    stack.push_async_callback(store.close)
    keys_pool = settings.event_store_subject_keys_pool_size
    keys = Database(build_engine(url, pool_size=keys_pool, max_overflow=0))
    stack.push_async_callback(keys.dispose)
    interval = settings.event_store_sequencer_election_interval_seconds

    def leadership(name: str) -> Leadership:
        return AdvisoryLockLeadership(
            lambda: connect(url, f"outrigger-{name}"), name, check_interval=interval
        )

    return _Storage(store, store, keys, leadership, pool.check)


def _subscriptions(
    settings: EventStoreSettings, store: EventStore, stack: contextlib.AsyncExitStack
) -> LogSubscriptions:
    buffered = settings.event_store_sse_max_buffered_events
    batch_size = settings.event_store_sse_batch_size
    tail = LogTail(
        store,
        batch_size=min(batch_size, buffered),
        idle_wait=settings.event_store_sse_idle_wait_seconds,
        overflow_grace=settings.event_store_sse_overflow_grace_seconds,
    )
    tail.start()
    stack.push_async_callback(tail.close)
    return LogSubscriptions(store, tail, batch_size=batch_size, max_buffered=buffered)


async def _start_background(
    settings: EventStoreSettings,
    storage: _Storage,
    bus: MessageBus,
    stack: contextlib.AsyncExitStack,
) -> None:
    """The sequencer (PostgreSQL), the relay and the gauges: every replica runs them; elections
    pick the one that sequences and the one that relays."""
    election = settings.event_store_sequencer_election_interval_seconds
    if storage.sequenced is not None and settings.event_store_sequencer_enabled:
        sequencer = Sequencer(
            storage.sequenced,
            storage.leadership(SEQUENCER_ELECTION),
            batch_size=settings.event_store_sequencer_batch_size,
            poll_interval=settings.event_store_sequencer_poll_interval_seconds,
            election_interval=election,
        )
        stack.push_async_callback(sequencer.stop)
        sequencer.start()
    checkpoint = settings.event_store_relay_checkpoint
    if settings.event_store_relay_enabled:
        relay = Relay(
            storage.store,
            bus,
            storage.leadership(relay_election(checkpoint)),
            exchange=settings.event_store_relay_exchange,
            checkpoint=checkpoint,
            batch_size=settings.event_store_relay_batch_size,
            idle_wait=settings.event_store_relay_idle_wait_seconds,
            linger=settings.event_store_relay_linger_seconds,
            election_interval=election,
        )
        stack.push_async_callback(relay.stop)
        relay.start()
    gauges = LogGauges(
        storage.store,
        storage.sequenced,
        relay_checkpoint=checkpoint,
        interval=settings.event_store_metrics_interval_seconds,
    )
    stack.push_async_callback(gauges.stop)
    gauges.start()
