"""Ingest from the bus: queue `audit.records`, bound to `outrigger.audit` with `#`.

Every audit record the other services publish (`outrigger.audit_trail`) lands here, and so does
any producer's CloudEvent whose data is an audit record: `{actor, action, resource, outcome?,
tenant?, data?, sensitive?, subject?}`, with `id`, `source`, `type` and `time` taken from the
CloudEvent. (Records published before the kit's trail took this shape name `target` and
`details`; they are read as `resource` and `data`.)

Deliveries are gathered into batches (the kit's `Batcher`: up to 500 records or 50 ms) and each
batch is appended in one transaction; a handler returns, and its message is acknowledged, only
after its batch committed. A record stored before (same `source` + `id`: a redelivery, a
publisher's retry) is acknowledged and dropped. A message that is not a valid record is
dead-lettered at once with the reason (`audit.records.dlq`, header `x-outrigger-death-reason`),
never blocking the queue. While the database is down, batches are retried with backoff. The
database dedupes, so the bus's own de-duplication is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from outrigger.bus import Ack, Batcher, Drop
from outrigger.errors import InvalidInput
from services.audit.domain.models import DEFAULT_TENANT, AuditRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outrigger.bus import Delivery, MessageBus, Outcome, Subscription
    from services.audit.usecases import AuditService

QUEUE = "audit.records"
AUDIT_EXCHANGE = "outrigger.audit"
MAX_ATTEMPTS = 12
LEGACY_TYPE = "dev.outrigger.audit.record"


class RecordIngest:
    """The handler: a delivery becomes a record, submitted to the batch being gathered."""

    def __init__(self, service: AuditService, *, max_size: int = 500, max_wait: float = 0.05):
        self.service = service
        self.batcher: Batcher[AuditRecord] = Batcher(
            self._store, max_size=max_size, max_wait=max_wait, name="audit-ingest"
        )

    async def __call__(self, delivery: Delivery) -> Outcome:
        try:
            record = record_of(delivery)
        except InvalidInput as exc:
            self.service.rejected("queue")
            return Drop(f"not an audit record: {exc.detail}")
        return await self.batcher.submit(record)

    async def _store(self, records: list[AuditRecord]) -> Sequence[Outcome]:
        results = await self.service.ingest(records)
        return [
            Drop(f"not a valid audit record: {result.detail}")
            if isinstance(result, InvalidInput)
            else Ack()
            for result in results
        ]


def record_of(delivery: Delivery) -> AuditRecord:
    """The record a delivery carries; InvalidInput if its data has not the record's shape
    (the use case checks the values)."""
    event = delivery.event
    data = event.data
    if not isinstance(data, dict):
        raise InvalidInput(f"its data must be a JSON object, not {type(data).__name__}")
    legacy = "resource" not in data and "target" in data
    details = data.get("details", {}) if legacy else data.get("data", {})
    if legacy and data.get("request_id") is not None and isinstance(details, dict):
        details = {**details, "request_id": data["request_id"]}
    sensitive = data.get("sensitive", [])
    if not isinstance(sensitive, list) or not all(isinstance(p, str) for p in sensitive):
        raise InvalidInput("sensitive must be a list of field paths")
    return AuditRecord(
        id=event.id,
        source=event.source,
        type=delivery.routing_key if legacy and event.type == LEGACY_TYPE else event.type,
        time=event.time,
        actor=_text(data, "actor"),
        action=_text(data, "action"),
        resource=_text(data, "target" if legacy else "resource"),
        outcome=data.get("outcome", "success"),
        tenant=data.get("tenant", DEFAULT_TENANT),
        data=details if details is not None else {},
        sensitive=tuple(sensitive),
        subject=data.get("subject"),
    )


def _text(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise InvalidInput(f"{name} is missing")
    return data[name]


async def subscribe_records(
    bus: MessageBus,
    ingest: RecordIngest,
    *,
    queue: str = QUEUE,
    exchange: str = AUDIT_EXCHANGE,
    prefetch: int = 1000,
) -> Subscription:
    """Consumes `queue` (bound to `exchange`, `#`) with `ingest`."""
    return await bus.subscribe(
        queue,
        [(exchange, "#")],
        ingest,
        max_attempts=MAX_ATTEMPTS,
        retry_delay_seconds=0.5,
        max_retry_delay_seconds=30.0,
        prefetch=prefetch,
        dedupe=False,
    )
