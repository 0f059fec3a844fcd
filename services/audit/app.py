"""Wiring: the audit service's app, with its storage, subject keys, bus, ingest, loops, probes.

`outrigger serve audit` (or `python -m services.audit`, or `outrigger dev`) calls `build_app()`.
The database URL's scheme picks the storage: PostgreSQL (schema `audit`, monthly partitions;
the checkpoint and retention loops elected among replicas) or the embedded SQLite file.
Everything that does I/O is built in the lifespan and closed there, in reverse order.

The broker is a degraded-only dependency, as for the event store: without it the API still takes
records over HTTP and answers proofs; queue ingest and checkpoint publishing resume when it is
back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import MetaData

from outrigger.bus import connect_bus
from outrigger.db import Database, build_engine, connect, session_url
from outrigger.http import create_app, dependency
from outrigger.leadership import AdvisoryLockLeadership, Elected, SoleLeadership
from outrigger.settings import load_settings
from outrigger.stealth import Keyring, SqlSubjectKeyStore, Stealth, subject_keys_table
from outrigger.tasks import Periodic
from services.audit.adapters.postgres import PostgresAuditLog
from services.audit.adapters.sqlite import SCHEMA, SqliteAuditLog
from services.audit.api import ROUTERS
from services.audit.consumers import RecordIngest, subscribe_records
from services.audit.metrics import AuditMetrics
from services.audit.settings import AuditSettings
from services.audit.usecases import (
    AuditService,
    CheckpointLoop,
    Checkpoints,
    Export,
    Retention,
    SensitiveFields,
    Verifier,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from fastapi import FastAPI

    from outrigger.bus import MessageBus
    from outrigger.leadership import Leadership
    from services.audit.domain.port import AuditLog

SERVICE = "audit"
CHECKPOINT_ELECTION = "audit.checkpoints"
RETENTION_ELECTION = "audit.retention"
DESCRIPTION = """A verifiable audit log. Records arrive over HTTP or from RabbitMQ (queue
`audit.records`, bound to `outrigger.audit`) and become the leaves of one RFC 9162 Merkle tree
per tenant, with signed C2SP checkpoints, inclusion and consistency proofs, search with keyset
pages, sensitive fields encrypted (and revealed, audited, with `audit:reveal`), verification,
NDJSON export for offline checks, and retention that keeps every proof valid."""


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    """The audit service; settings from the environment unless given (tests pass them)."""
    settings = settings or load_settings(AuditSettings)
    keyring = Keyring.from_settings(settings)  # a bad key setting fails here, before serving
    signer = settings.signer()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            storage = await _open_storage(settings, stack)
            log = storage.log
            await stack.enter_async_context(dependency(app, "database", check=log.check))
            metrics = AuditMetrics(settings.audit_metric_tenant_limit)
            checkpoints = Checkpoints(log, signer, settings.audit_origin)
            keys = subject_keys_table(MetaData(), schema=SCHEMA)
            stealth = Stealth(keyring, SqlSubjectKeyStore(storage.keys.engine, keys))
            service = AuditService(log, SensitiveFields(stealth), checkpoints, metrics)
            bus = connect_bus(settings.amqp_url, source=SERVICE, prefetch=settings.amqp_prefetch)
            ingest = RecordIngest(
                service,
                max_size=settings.audit_ingest_batch_size,
                max_wait=settings.audit_ingest_batch_wait_seconds,
            )
            ingest.batcher.start()
            stack.push_async_callback(ingest.batcher.stop)
            stack.push_async_callback(bus.close)  # which waits for the handlers under way

            async def start_bus() -> None:
                await bus.start()
                if settings.audit_ingest_enabled:
                    await subscribe_records(
                        bus,
                        ingest,
                        queue=settings.audit_ingest_queue,
                        exchange=settings.audit_ingest_exchange,
                        prefetch=settings.audit_ingest_prefetch,
                    )

            await stack.enter_async_context(
                dependency(app, "bus", check=bus.check, start=start_bus, required=False)
            )
            for loop in _loops(settings, storage, checkpoints, bus, metrics):
                loop.start()
                stack.push_async_callback(loop.stop)
            app.state.audit = service
            app.state.audit_verifier = Verifier(log, checkpoints, metrics)
            app.state.audit_export = Export(log, checkpoints)
            yield

    return create_app(
        SERVICE, settings, routers=ROUTERS, lifespan=lifespan, description=DESCRIPTION
    )


@dataclass(frozen=True)
class _Storage:
    log: AuditLog
    keys: Database
    leadership: Callable[[str], Leadership]


async def _open_storage(settings: AuditSettings, stack: contextlib.AsyncExitStack) -> _Storage:
    """Opens the storage without waiting for its server: a database that is down at start-up
    makes the service not ready, not gone."""
    if not settings.database_url.startswith("postgresql"):
        database = Database.from_settings(settings, schemas=[SCHEMA])
        stack.push_async_callback(database.dispose)
        sqlite = SqliteAuditLog(database)
        stack.push_async_callback(sqlite.close)
        return _Storage(sqlite, database, SoleLeadership)
    url = session_url(settings)
    log = await PostgresAuditLog.from_settings(settings)
    stack.push_async_callback(log.close)
    pool_size = settings.audit_subject_keys_pool_size
    keys = Database(build_engine(url, pool_size=pool_size, max_overflow=0))
    stack.push_async_callback(keys.dispose)
    interval = settings.audit_election_interval_seconds

    def leadership(name: str) -> Leadership:
        return AdvisoryLockLeadership(
            lambda: connect(url, f"outrigger-{name}"), name, check_interval=interval
        )

    return _Storage(log, keys, leadership)


def _loops(
    settings: AuditSettings,
    storage: _Storage,
    checkpoints: Checkpoints,
    bus: MessageBus,
    metrics: AuditMetrics,
) -> list[Elected]:
    """The checkpoint loop and (with a retention period) the retention loop, each run by one
    elected replica."""
    election = settings.audit_election_interval_seconds
    issuing = CheckpointLoop(
        storage.log,
        checkpoints,
        bus,
        metrics,
        every=settings.audit_checkpoint_every,
        seconds=settings.audit_checkpoint_seconds,
        exchange=settings.audit_checkpoint_exchange,
    )
    interval = min(1.0, settings.audit_checkpoint_seconds)
    loops = [
        Elected(
            storage.leadership(CHECKPOINT_ELECTION),
            Periodic(issuing, interval, name="audit-checkpoints"),
            interval=election,
            name="audit-checkpoint-election",
        )
    ]
    months = settings.audit_retention_months
    if months:
        dropping = Periodic(
            Retention(storage.log, months),
            settings.audit_retention_interval_seconds,
            name="audit-retention",
        )
        loops.append(
            Elected(
                storage.leadership(RETENTION_ELECTION),
                dropping,
                interval=election,
                name="audit-retention-election",
            )
        )
    return loops
