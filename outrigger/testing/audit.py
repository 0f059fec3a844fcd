"""An inbox for the audit records a service under test publishes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from outrigger.bus import Ack
from outrigger.testing.broker import LEFT

if TYPE_CHECKING:
    from outrigger.bus import Delivery, MessageBus


@dataclass
class AuditInbox:
    """Every audit record delivered to it, in arrival order."""

    records: list[Delivery] = field(default_factory=list)

    async def __call__(self, delivery: Delivery) -> Ack:
        self.records.append(delivery)
        return Ack()

    async def wait(self, count: int, within: float = 5.0) -> list[Delivery]:
        """The records once there are at least `count`; fails after `within` seconds."""
        deadline = time.monotonic() + within
        while len(self.records) < count:
            assert time.monotonic() < deadline, f"{len(self.records)} audit records, not {count}"
            await asyncio.sleep(0.01)
        return self.records

    @property
    def actions(self) -> list[str]:
        """The records' routing keys, `<service>.<action>`."""
        return [record.routing_key for record in self.records]


async def audit_inbox(bus: MessageBus, service: str) -> AuditInbox:
    """An inbox subscribed (on a queue of its own) to every audit record of `service`; the
    queue is removed from the broker when the test session ends (`broker.LEFT`)."""
    inbox = AuditInbox()
    await bus.subscribe(LEFT.queue("audit"), [("outrigger.audit", f"{service}.#")], inbox)
    return inbox
