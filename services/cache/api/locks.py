"""Fenced locks: `/v1/locks/{resource}` to acquire and release, `:renew` and `:validate`.

The `:`-suffixed routes are declared first: `{resource}` alone would also match `r:renew`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from outrigger.auth import Principal, Scopes, require_scope
from outrigger.errors import Conflict
from services.cache import metrics
from services.cache.api.context import Running  # noqa: TC001 (FastAPI resolves it at runtime)
from services.cache.api.docs import HELD_ELSEWHERE
from services.cache.api.schemas import AcquireLock, CheckFence, HeldLock, RenewLock

router = APIRouter(
    prefix="/v1/locks", tags=["locks"], dependencies=[require_scope(Scopes.LOCKS_WRITE)]
)


@router.post("/{resource}:renew", responses=HELD_ELSEWHERE)
async def renew_lock(resource: str, renewal: RenewLock, running: Running) -> HeldLock:
    """Extends the holder's lease to `ttl_ms` from now, keeping its fence. 409: the lease was
    lost, so stop the work the lock guards."""
    try:
        lock = await running.store.renew(resource, renewal.token, renewal.ttl_ms)
    except Conflict:
        metrics.LOCK_LOSSES.labels("renew_refused").inc()
        raise
    return HeldLock.of(lock)


@router.post("/{resource}:validate", status_code=204, responses=HELD_ELSEWHERE)
async def validate_fence(resource: str, check: CheckFence, running: Running) -> Response:
    """204 if no later fence was issued for the resource; 409 if one was (refuse the write)."""
    await running.store.validate_fence(resource, check.fence)
    return Response(status_code=204)


@router.post("/{resource}", responses=HELD_ELSEWHERE)
async def acquire_lock(
    resource: str,
    wanted: AcquireLock,
    running: Running,
    principal: Annotated[Principal, require_scope(Scopes.LOCKS_WRITE)],
) -> HeldLock:
    """Takes the lock for `ttl_ms` with a new token and a higher fence, waiting up to
    `wait_ms` for the holder; 409 with `Retry-After` if it is still held."""
    try:
        lock = await running.store.acquire(resource, wanted.ttl_ms, wanted.wait_ms)
    except Conflict as exc:
        metrics.LOCK_CONTENTION.inc()
        if (retry_after_ms := exc.extensions.get("retry_after_ms")) is not None:
            exc.headers["Retry-After"] = str(-(-int(retry_after_ms) // 1000))
        raise
    metrics.LOCK_ACQUISITIONS.inc()
    if lock.took_over:
        metrics.LOCK_LOSSES.labels("taken_over").inc()
        await running.audit.record(
            "lock_steal", actor=principal.subject, target=resource, details={"fence": lock.fence}
        )
    return HeldLock.of(lock)


@router.delete("/{resource}", status_code=204, responses=HELD_ELSEWHERE)
async def release_lock(
    resource: str,
    running: Running,
    lock_token: Annotated[str, Header(description="the token the acquire returned")],
) -> Response:
    """Frees the lock if `Lock-Token` holds it; 409 if the lease was already lost."""
    try:
        await running.store.release(resource, lock_token)
    except Conflict:
        metrics.LOCK_LOSSES.labels("release_refused").inc()
        raise
    return Response(status_code=204)
