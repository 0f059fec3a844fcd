"""The plugin executor's errors, as the kit's problem types (RFC 9457 at the edge)."""

from __future__ import annotations

from outrigger.errors import InfrastructureError, NotFound


class SandboxUnavailable(InfrastructureError):
    """No sandboxed worker can take a run (the pool is stopping or its workers died), or the
    host lacks a feature the deployment requires."""

    slug = "sandbox-unavailable"
    title = "Sandbox unavailable"


def unknown_plugin(name: str) -> NotFound:
    return NotFound(f"no plugin named {name!r} is loaded; GET /v1/plugins lists them")
