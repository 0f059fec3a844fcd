"""The message bus: CloudEvents over topic exchanges, with an adapter per URL scheme.

`connect_bus(settings.amqp_url, source=...)` gives the RabbitMQ bus for `amqp://` and `amqps://`
URLs and the in-process bus for `memory://`; call `start()` in the lifespan and `close()` on exit.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from outrigger.bus.batching import Batcher
from outrigger.bus.dispatch import MemorySeenIds
from outrigger.bus.port import (
    ATTEMPT_HEADER,
    DEATH_REASON_HEADER,
    DLX,
    Ack,
    CloudEvent,
    Delivery,
    Drop,
    Handler,
    MessageBus,
    Outcome,
    Retry,
    SeenIds,
    Subscription,
)
from outrigger.errors import InvalidInput

__all__ = [
    "ATTEMPT_HEADER",
    "DEATH_REASON_HEADER",
    "DLX",
    "Ack",
    "Batcher",
    "CloudEvent",
    "Delivery",
    "Drop",
    "Handler",
    "MemorySeenIds",
    "MessageBus",
    "Outcome",
    "Retry",
    "SeenIds",
    "Subscription",
    "connect_bus",
]


def connect_bus(
    url: str, *, source: str, prefetch: int = 100, seen_ids: SeenIds | None = None
) -> MessageBus:
    """The bus for `url` (`amqp://`, `amqps://` or `memory://[name]`), not yet started."""
    scheme = urlsplit(url).scheme
    if scheme in ("amqp", "amqps"):
        from outrigger.bus.rabbitmq import RabbitMQBus

        return RabbitMQBus(url, source=source, prefetch=prefetch, seen_ids=seen_ids)
    if scheme == "memory":
        from outrigger.bus.memory import MemoryBus

        return MemoryBus(url, source=source, prefetch=prefetch, seen_ids=seen_ids)
    raise InvalidInput(f"unsupported bus URL scheme {scheme!r}: use amqp://, amqps:// or memory://")
