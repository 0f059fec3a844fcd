"""The cache's HTTP API under `/v1`: entries, batches and invalidation, fenced locks."""

from services.cache.api import batches, entries, locks

ROUTERS = (entries.router, batches.router, locks.router)
HOT_ROUTES = (entries.READ_ROUTE,)

__all__ = ["HOT_ROUTES", "ROUTERS"]
