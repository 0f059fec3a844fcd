"""The errors the cache raises when a condition, a lease, a lock or a fence says no.

Each one says what happened and what the caller should do next, and carries the members a
client needs to act on it (`current_version`, `retry_after_ms`, `latest_fence`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.errors import Conflict, PreconditionFailed

if TYPE_CHECKING:
    from services.cache.domain.models import WriteCondition


def precondition_failed(
    namespace: str, key: str, condition: WriteCondition, current: str | None
) -> PreconditionFailed:
    where = f"{namespace}/{key}"
    if condition.contradictory:
        now = f"is at version {current}" if current else "has no fresh entry"
        detail = (
            f"If-Match {condition.if_match} and If-None-Match: * never hold together ({where} "
            f"{now}); send one of them"
        )
    elif condition.if_none_match_any:
        detail = f"If-None-Match: * but {where} exists (version {current}); read it or delete it"
    else:
        now = f"is at version {current}" if current else "has no fresh entry"
        detail = f"If-Match {condition.if_match} but {where} {now}; read it again and retry"
    return PreconditionFailed(detail, namespace=namespace, key=key, current_version=current)


def lock_held(resource: str, remaining_ms: int) -> Conflict:
    return Conflict(
        f"lock {resource!r} is held by another holder for up to {remaining_ms} ms more; "
        "retry later or pass wait_ms",
        resource=resource,
        retry_after_ms=remaining_ms,
    )


def not_holder(resource: str) -> Conflict:
    return Conflict(
        f"lock {resource!r} is not held by this token: its lease ran out or it was released; "
        "stop the work it guarded and acquire it again",
        resource=resource,
    )


def lease_not_held(namespace: str, key: str) -> Conflict:
    return Conflict(
        f"fill of {namespace}/{key} refused: this token does not hold its fill lease (the lease "
        "ran out, or a write, delete or invalidation of the key voided it); nothing was stored, "
        "read the key again",
        namespace=namespace,
        key=key,
    )


def lease_outdated(namespace: str, key: str, tag: str) -> Conflict:
    return Conflict(
        f"fill of {namespace}/{key} refused: tag {tag!r} was invalidated after the fill lease "
        "was granted, so the value may be stale; nothing was stored, read the source again",
        namespace=namespace,
        key=key,
        tag=tag,
    )


def stale_fence(resource: str, fence: int, latest: int) -> Conflict:
    if fence > latest:
        return Conflict(f"fence {fence} was never issued for lock {resource!r}", resource=resource)
    return Conflict(
        f"fence {fence} of lock {resource!r} is stale: fence {latest} was issued since, so "
        "another holder has the lock; refuse this write",
        resource=resource,
        latest_fence=latest,
    )
