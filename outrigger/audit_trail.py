"""Audit records: what every service publishes when someone changes, erases or reveals something.

    audit = AuditTrail(bus, "event-store")
    await audit.record("stream_deleted", actor=principal.subject, resource="order-7",
                       data={"hard": False})

A record is a CloudEvent on exchange `outrigger.audit` with routing key and type
`<service>.<action>`; its data has the audit service's record shape, `{actor, action, resource,
outcome, tenant, data, sensitive, subject}` (`data` gets the request id too), so the audit
service stores it as it comes (queue `audit.records`). The action has already happened when it
is recorded, so a broker that stays down does not turn it into an error for the caller: the
record is logged in full at ERROR level and counted in `outrigger_audit_publish_failures_total`
instead.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Final, Literal

from prometheus_client import Counter

from outrigger.bus import CloudEvent
from outrigger.errors import MessagingError
from outrigger.telemetry import current_request_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from outrigger.bus import MessageBus

AUDIT_EXCHANGE: Final = "outrigger.audit"
DEFAULT_TENANT: Final = "default"
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
        resource: str,
        data: Mapping[str, Any] | None = None,
        outcome: Literal["success", "failure"] = "success",
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        """Publishes `<service>.<action>` about `resource`, done by `actor` (a token subject).

        Waits for the broker's confirm; when it cannot be had, logs the record instead (see the
        module docstring) and returns normally.
        """
        if not _WORD.fullmatch(action):
            raise ValueError(f"audit action {action!r} must be lowercase letters, digits, _ or -")
        details = dict(data or {})
        request_id = current_request_id()
        if request_id is not None:
            details.setdefault("request_id", request_id)
        record: dict[str, Any] = {
            "actor": actor,
            "action": action,
            "resource": resource,
            "outcome": outcome,
            "tenant": tenant,
            "data": details,
            "sensitive": [],
            "subject": None,
        }
        name = f"{self.service}.{action}"
        event = CloudEvent.new(source=self.bus.source, type=name, data=record, subject=resource)
        try:
            await self.bus.publish(AUDIT_EXCHANGE, name, event)
        except MessagingError as exc:
            PUBLISH_FAILURES.labels(self.service).inc()
            log.error(
                "audit record %s not published (%s); recorded here instead",
                name,
                exc.detail,
                extra={"audit_record": record, "audit_event_id": event.id},
            )
            return
        RECORDED.labels(self.service, action).inc()
