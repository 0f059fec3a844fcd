"""Audit records: what every service publishes when someone changes or erases something.

    audit = AuditTrail(bus, "event-store")
    await audit.record("stream_deleted", actor=principal.subject, target="order-7",
                       details={"hard": False})

A record is a CloudEvent on exchange `outrigger.audit` with routing key `<service>.<action>`
(the audit service binds `audit.records` to it); its data is `{actor, action, target, details,
request_id}`. The action has already happened when it is recorded, so a broker that stays down
does not turn it into an error for the caller: the record is logged in full at ERROR level and
counted in `outrigger_audit_publish_failures_total` instead.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import Counter

from outrigger.bus import CloudEvent
from outrigger.errors import MessagingError
from outrigger.telemetry import current_request_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from outrigger.bus import MessageBus

AUDIT_EXCHANGE: Final = "outrigger.audit"
AUDIT_EVENT_TYPE: Final = "dev.outrigger.audit.record"
_WORD = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

RECORDED = Counter(
    "outrigger_audit_records_published_total",
    "Audit records published and confirmed, by service and action.",
    ["service", "action"],
)
PUBLISH_FAILURES = Counter(
    "outrigger_audit_publish_failures_total",
    "Audit records the broker did not take (each one is logged in full instead).",
    ["service"],
)
log = logging.getLogger("outrigger.audit")


class AuditTrail:
    """Publishes one service's audit records on its bus."""

    def __init__(self, bus: MessageBus, service: str) -> None:
        if not _WORD.fullmatch(service):
            raise ValueError(f"service name {service!r} must be lowercase letters, digits, _ or -")
        self.bus = bus
        self.service = service

    async def record(
        self,
        action: str,
        *,
        actor: str,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Publishes `<service>.<action>` about `target`, done by `actor` (a token subject).

        Waits for the broker's confirm; when it cannot be had, logs the record instead (see the
        module docstring) and returns normally.
        """
        if not _WORD.fullmatch(action):
            raise ValueError(f"audit action {action!r} must be lowercase letters, digits, _ or -")
        data = {
            "actor": actor,
            "action": action,
            "target": target,
            "details": dict(details or {}),
            "request_id": current_request_id(),
        }
        event = CloudEvent.new(
            source=self.bus.source, type=AUDIT_EVENT_TYPE, data=data, subject=target
        )
        try:
            await self.bus.publish(AUDIT_EXCHANGE, f"{self.service}.{action}", event)
        except MessagingError as exc:
            PUBLISH_FAILURES.labels(self.service).inc()
            log.error(
                "audit record %s.%s not published (%s); recorded here instead",
                self.service,
                action,
                exc.detail,
                extra={"audit_record": data, "audit_event_id": event.id},
            )
            return
        RECORDED.labels(self.service, action).inc()
