"""Fenced locks: `/v1/locks/{resource}` to acquire and release, `:renew` and `:validate`.

The `:`-suffixed routes are declared first: `{resource}` alone would also match `r:renew`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from outrigger.auth import Principal, Scopes, require_scope
from outrigger.errors import Conflict
from outrigger.http import ServiceRoute, problem_responses
from services.cache.api.context import Locks  # noqa: TC001 (FastAPI resolves it at runtime)
from services.cache.api.schemas import (
    RESOURCE_SCHEMA,
    AcquireLock,
    CheckFence,
    HeldLock,
    RenewLock,
)

router = APIRouter(
    prefix="/v1/locks",
    tags=["locks"],
    dependencies=[require_scope(Scopes.LOCKS_WRITE)],
    route_class=ServiceRoute,
)
Resource = Annotated[str, Path(json_schema_extra=RESOURCE_SCHEMA)]
NOT_HOLDER = problem_responses({409: "Not (or no longer) the holder: stop the work it guards."})


@router.post("/{resource}:renew", responses=NOT_HOLDER)
async def renew_lock(resource: Resource, renewal: RenewLock, locks: Locks) -> HeldLock:
    """Extends the holder's lease to `ttl_ms` from now, keeping its fence. 409: the lease was
    lost, so stop the work the lock guards."""
    return HeldLock.of(await locks.renew(resource, renewal.token, renewal.ttl_ms))


@router.post(
    "/{resource}:validate",
    status_code=204,
    responses=problem_responses({409: "A later fence was issued: refuse the write."}),
)
async def validate_fence(resource: Resource, check: CheckFence, locks: Locks) -> Response:
    """204 if no later fence was issued for the resource; 409 if one was (refuse the write)."""
    await locks.validate_fence(resource, check.fence)
    return Response(status_code=204)


@router.post(
    "/{resource}",
    responses=problem_responses({409: "Held by another holder (`retry_after_ms`)."}),
)
async def acquire_lock(
    resource: Resource,
    wanted: AcquireLock,
    locks: Locks,
    principal: Annotated[Principal, require_scope(Scopes.LOCKS_WRITE)],
) -> HeldLock:
    """Takes the lock for `ttl_ms` with a new token and a higher fence, waiting up to
    `wait_ms` for the holder; 409 with `Retry-After` if it is still held."""
    try:
        lock = await locks.acquire(resource, wanted.ttl_ms, wanted.wait_ms, actor=principal.subject)
    except Conflict as exc:
        if (retry_after_ms := exc.extensions.get("retry_after_ms")) is not None:
            exc.headers["Retry-After"] = str(-(-int(retry_after_ms) // 1000))
        raise
    return HeldLock.of(lock)


@router.delete(
    "/{resource}",
    status_code=204,
    responses=NOT_HOLDER,
)
async def release_lock(
    resource: Resource,
    locks: Locks,
    lock_token: Annotated[str, Header(description="the token the acquire returned")],
) -> Response:
    """Frees the lock if `Lock-Token` holds it; 409 if the lease was already lost."""
    await locks.release(resource, lock_token)
    return Response(status_code=204)
