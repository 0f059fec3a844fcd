"""The plugin executor's errors, as the kit's problem types (RFC 9457 at the edge)."""

from __future__ import annotations

from outrigger.errors import InfrastructureError, InvalidInput, NotFound


class SandboxUnavailable(InfrastructureError):
    """No sandboxed worker can take a run (the pool is stopping or its workers died), or the
    host lacks a feature the deployment requires."""

    slug = "sandbox-unavailable"
    title = "Sandbox unavailable"


def unknown_plugin(name: str) -> NotFound:
    return NotFound(f"no plugin named {name!r} is loaded; GET /v1/plugins lists them")


class JobStateUnavailable(InfrastructureError):
    """The store of jobs' state (the cache service) cannot be reached now: a job's state is
    unknown, never guessed."""

    slug = "job-state-unavailable"
    title = "Job state unavailable"


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key the caller already used for another request (another plugin or
    input): the IETF Idempotency-Key draft's 422."""

    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with another request"
