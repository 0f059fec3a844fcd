"""The request id of the work in progress, visible to logs and outgoing calls."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("outrigger_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()
