"""What the routes share: the use cases the lifespan built (`app.state.cache`, `.locks`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.cache.service import CacheService, LockService


async def entries(request: Request) -> CacheService:
    """The dependency that hands a route the entry use cases."""
    cache: CacheService = request.app.state.cache
    return cache


async def locks(request: Request) -> LockService:
    """The dependency that hands a route the lock use cases."""
    found: LockService = request.app.state.locks
    return found


Entries = Annotated[CacheService, Depends(entries)]
Locks = Annotated[LockService, Depends(locks)]
