"""The cache's HTTP API under `/v1`: entries, batches and invalidation, fenced locks.

`ROUTES` are served ahead of the routers, at the app's top level: the hot read, which a
router's dispatch would cost more than the read itself (see the kit's `RequestRoute`).
"""

from services.cache.api import batches, entries, locks

ROUTERS = (entries.router, batches.router, locks.router)
ROUTES = (entries.READ,)

__all__ = ["ROUTERS", "ROUTES"]
