"""Checkpoints: signed tree heads (C2SP tlog-checkpoint notes), issued and published.

A checkpoint of tenant T says "T's tree has N leaves and this root", signed with the service's
Ed25519 key under origin `<origin>/<T>`. HTTP writes issue one before they answer (each receipt
carries a checkpoint covering its record); records from the queue rely on `CheckpointLoop`, run
by one elected replica: a tenant whose tree grew gets a checkpoint once it grew by `every`
records or its latest checkpoint is `seconds` old. The loop also publishes every checkpoint
stored since it last looked to exchange `outrigger.checkpoints` (routing key `audit.<tenant>`,
type `dev.outrigger.audit.checkpoint`) for outside monitors, and refreshes the age gauges.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from outrigger.bus import CloudEvent
from outrigger.errors import MessagingError, NotFound
from outrigger.notes import checkpoint_body
from services.audit.domain.models import Checkpoint
from services.audit.metrics import CHECKPOINTS_ISSUED

if TYPE_CHECKING:
    from collections.abc import Iterable

    from outrigger.bus import MessageBus
    from outrigger.notes import NoteSigner
    from services.audit.domain.port import AuditLog
    from services.audit.metrics import AuditMetrics

CHECKPOINT_EVENT_TYPE = "dev.outrigger.audit.checkpoint"
log = logging.getLogger("outrigger.audit")


def checkpoint_document(checkpoint: Checkpoint, verifier_key: str) -> dict[str, Any]:
    """A checkpoint as the API, the export and the published event carry it."""
    return {
        "tenant": checkpoint.tenant,
        "tree_size": checkpoint.size,
        "root_hash": checkpoint.root.hex(),
        "issued_at": checkpoint.issued_at,
        "note": checkpoint.note,
        "verifier_key": verifier_key,
    }


class Checkpoints:
    """Issues and finds a tenant's checkpoints."""

    def __init__(self, log: AuditLog, signer: NoteSigner, origin: str) -> None:
        self._log = log
        self._signer = signer
        self._origin = origin

    @property
    def verifier_key(self) -> str:
        """The public key that verifies every checkpoint (`<name>+<hash>+<base64>`)."""
        return self._signer.verifier_key

    def origin(self, tenant: str) -> str:
        return f"{self._origin}/{tenant}"

    async def issue(self, tenant: str) -> Checkpoint:
        """A checkpoint of the tenant's tree as it is now: the latest one if the tree did not
        grow since, else a new one, signed and stored. NotFound for a tenant with no records."""
        head = await self._log.head(tenant)
        if head.size == 0:
            raise NotFound(
                f"tenant {tenant!r} has no records yet: there is no tree to sign", tenant=tenant
            )
        latest = await self._log.latest_checkpoint(tenant)
        if latest is not None and latest.size >= head.size:
            return latest
        note = self._signer.sign(checkpoint_body(self.origin(tenant), head.size, head.root))
        checkpoint = Checkpoint(tenant, head.size, head.root, datetime.now(UTC), note)
        await self._log.add_checkpoint(checkpoint)
        CHECKPOINTS_ISSUED.inc()
        return checkpoint

    async def latest(self, tenant: str) -> Checkpoint:
        latest = await self._log.latest_checkpoint(tenant)
        if latest is None:
            raise NotFound(f"tenant {tenant!r} has no checkpoint yet", tenant=tenant)
        return latest

    async def covering(self, tenant: str, indexes: Iterable[int]) -> dict[int, Checkpoint | None]:
        """For each leaf index, the first checkpoint whose tree holds it: one query per distinct
        checkpoint (a batch just checkpointed needs one)."""
        covering: dict[int, Checkpoint | None] = {}
        found: Checkpoint | None = None
        for index in sorted(set(indexes)):
            if found is None or found.size <= index:
                found = await self._log.checkpoint_covering(tenant, index)
            covering[index] = found
        return covering


class CheckpointLoop:
    """One step of the elected loop: issue what is due, publish what is new, refresh gauges."""

    def __init__(
        self,
        log: AuditLog,
        checkpoints: Checkpoints,
        bus: MessageBus,
        metrics: AuditMetrics,
        *,
        every: int,
        seconds: float,
        exchange: str,
    ) -> None:
        self._log = log
        self._checkpoints = checkpoints
        self._bus = bus
        self._metrics = metrics
        self._every = every
        self._seconds = seconds
        self._exchange = exchange
        self._latest: dict[str, Checkpoint] = {}
        self._published: dict[str, int] = {}

    async def __call__(self) -> bool:
        now = datetime.now(UTC)
        for head in await self._log.heads():
            tenant = head.tenant
            latest = self._latest.get(tenant)
            if latest is None or head.size > latest.size:
                latest = await self._log.latest_checkpoint(tenant)
            if latest is None or (head.size > latest.size and self._due(head.size, latest, now)):
                latest = await self._checkpoints.issue(tenant)
            self._latest[tenant] = latest
            self._metrics.tree_size(tenant, head.size)
            self._metrics.checkpoint_age(tenant, (now - latest.issued_at).total_seconds())
            await self._publish(tenant, latest)
        return False

    def _due(self, size: int, latest: Checkpoint, now: datetime) -> bool:
        grown = size - latest.size
        return grown >= self._every or (now - latest.issued_at).total_seconds() >= self._seconds

    async def _publish(self, tenant: str, latest: Checkpoint) -> None:
        """Every checkpoint stored since the last one published (the latest alone the first
        time this process sees the tenant). While the broker is down they wait for next time."""
        published = self._published.get(tenant)
        if published is not None and published >= latest.size:
            return
        fresh = (
            [latest]
            if published is None
            else await self._log.checkpoints(tenant, after_size=published)
        )
        key = self._checkpoints.verifier_key
        messages = [
            (
                f"audit.{tenant}",
                CloudEvent.new(
                    source=self._bus.source,
                    type=CHECKPOINT_EVENT_TYPE,
                    data=checkpoint_document(checkpoint, key),
                    subject=tenant,
                ),
            )
            for checkpoint in fresh
        ]
        try:
            await self._bus.publish_many(self._exchange, messages)
        except MessagingError as exc:
            log.warning("checkpoints of %s not published yet: %s", tenant, exc.detail)
            return
        self._published[tenant] = max(checkpoint.size for checkpoint in fresh)
