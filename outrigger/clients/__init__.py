"""Typed async HTTP clients for the Outrigger services (the Python SDK)."""

from outrigger.clients.base import IDEMPOTENT_METHODS, ServiceClient
from outrigger.clients.cache import CacheClient
from outrigger.clients.event_store import EventStoreClient

__all__ = ["IDEMPOTENT_METHODS", "CacheClient", "EventStoreClient", "ServiceClient"]
