"""The exception hierarchy every service raises, and its RFC 9457 problem form.

Domain errors say what the caller did wrong (4xx); infrastructure errors say which backend failed
(5xx, 503 for the ones that usually pass). Each class carries its HTTP status and a stable problem
`type`, so `outrigger.http` maps any of them to `application/problem+json` in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://outrigger.dev/problems/"
RETRY_AFTER_SECONDS = 1  # what every 503 tells a client to wait before it asks again


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable (`outrigger.settings`
    raises it; it lives here so the CLI can catch it without loading pydantic)."""


class OutriggerError(Exception):
    """Base of every error the platform raises on purpose."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        if self.status == 503:
            self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body: type, title, status, detail, instance, plus extension members."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extensions)
        return body


# --- domain errors: the caller can fix these -------------------------------------------------


class InvalidInput(OutriggerError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class BadRequest(InvalidInput):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class Unauthorized(OutriggerError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(OutriggerError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(OutriggerError):
    status = 404
    slug = "not-found"
    title = "Not found"


class MethodNotAllowed(OutriggerError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class RequestTimeout(OutriggerError):
    status = 408
    slug = "request-timeout"
    title = "Request timeout"


class Conflict(OutriggerError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class Gone(OutriggerError):
    status = 410
    slug = "gone"
    title = "Gone"


class PreconditionFailed(OutriggerError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class TooLarge(OutriggerError):
    status = 413
    slug = "too-large"
    title = "Content too large"


class RateLimited(OutriggerError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


# --- infrastructure errors: a backend failed ------------------------------------------------


class InfrastructureError(OutriggerError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"


class DatabaseError(InfrastructureError):
    slug = "database-unavailable"
    title = "Database unavailable"


class ConnectionPoolError(DatabaseError):
    slug = "database-pool-exhausted"
    title = "Database connection pool exhausted"


class CacheError(InfrastructureError):
    slug = "cache-unavailable"
    title = "Cache unavailable"


class MessagingError(InfrastructureError):
    slug = "messaging-unavailable"
    title = "Message broker unavailable"


class StorageError(InfrastructureError):
    slug = "storage-unavailable"
    title = "Storage unavailable"


class ExternalServiceError(InfrastructureError):
    status = 502
    slug = "upstream-failed"
    title = "Upstream service failed"


class BulkheadFull(InfrastructureError):
    slug = "bulkhead-full"
    title = "At capacity"


class CircuitOpen(ExternalServiceError):
    status = 503
    slug = "circuit-open"
    title = "Circuit open"


class Timeout(InfrastructureError):
    status = 504
    slug = "timeout"
    title = "Timed out"


def class_for_status(status: int) -> type[OutriggerError] | None:
    """The most general error class answering with `status`, if one does."""
    return _BY_STATUS.get(status)


_BY_STATUS: dict[int, type[OutriggerError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        Conflict,
        Gone,
        PreconditionFailed,
        TooLarge,
        InvalidInput,
        RateLimited,
        InfrastructureError,
        Timeout,
    )
}
