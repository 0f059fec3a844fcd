"""What tests declare on the shared RabbitMQ, and its removal afterwards.

A subscription leaves durable quorum queues behind: its work queue, a delay queue per retry
attempt and its dead-letter queue (and, when a test subscribes to that DLQ, the DLQ's own).
The broker keeps them until deleted, so a suite that forgets them fills the developer's broker
run after run. `Declared` remembers a test's names; `remove()` deletes each subscription's
queues and the exchanges, on a connection of its own with a deadline. `LEFT` holds what
helpers without a teardown of their own declared (the audit inbox): the session removes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aio_pika

from outrigger.bus.rabbitmq_consumer import delay_queue
from outrigger.testing.names import unique

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

CONNECT_SECONDS = 10.0
MAX_ATTEMPTS = 20
"""Delay queues are removed for subscriptions of up to this many attempts."""


@dataclass
class Declared:
    """Queue and exchange names unique to one test (or one session), remembered for removal."""

    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def queue(self, prefix: str) -> str:
        self.queues.append(name := unique(prefix))
        return name

    def exchange(self, prefix: str) -> str:
        self.exchanges.append(name := unique(prefix))
        return name

    async def remove(self, amqp_url: str) -> None:
        """Deletes every queue of each remembered subscription, and the exchanges; forgets them."""
        queues, exchanges = self.queues, self.exchanges
        self.queues, self.exchanges = [], []
        await remove(amqp_url, queues, exchanges)


LEFT = Declared()
"""Declared by helpers that have no teardown of their own; removed when the session ends."""


def subscription_queues(queue: str) -> Iterator[str]:
    """Every queue a subscription to `queue` may have declared, and a subscription to its DLQ."""
    for base in (queue, f"{queue}.dlq"):
        yield base
        yield f"{base}.dlq"
        for attempt in range(1, MAX_ATTEMPTS):
            yield delay_queue(base, attempt)


async def remove(amqp_url: str, queues: Iterable[str], exchanges: Iterable[str] = ()) -> None:
    """Deletes the subscriptions' queues (whatever they hold) and the exchanges, if they exist."""
    queues, exchanges = list(queues), list(exchanges)
    if not queues and not exchanges:
        return
    connection = await aio_pika.connect(amqp_url, timeout=CONNECT_SECONDS)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            for name in subscription_queues(queue):
                await channel.queue_delete(name, timeout=CONNECT_SECONDS)
        for exchange in exchanges:
            await channel.exchange_delete(exchange, timeout=CONNECT_SECONDS)
