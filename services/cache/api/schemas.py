"""The JSON bodies of the cache API: batches, invalidations, locks, and what a write stored.

Values in JSON travel as UTF-8 text (`"encoding": "utf-8"`, the default) or as base64
(`"encoding": "base64"`), chosen per request. A value read back as UTF-8 that is not valid UTF-8
comes back in base64, and its entry says so in its own `encoding`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime  # noqa: TC003 (pydantic resolves the annotation at runtime)
from typing import TYPE_CHECKING, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from outrigger.errors import InvalidInput
from services.cache.domain import (
    DEFAULT_CONTENT_TYPE,
    MAX_BATCH_KEYS,
    MAX_LEASE_MS,
    MAX_LOCK_TTL_MS,
    MAX_WAIT_MS,
)

if TYPE_CHECKING:
    from fastapi import Request

    from services.cache.domain import Entry, Lock

Encoding = Literal["utf-8", "base64"]


def seconds(description: str) -> Any:
    return Field(default=None, gt=0, allow_inf_nan=False, description=description)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def decode_value(value: str, encoding: Encoding, key: str) -> bytes:
    if encoding == "utf-8":
        return value.encode()
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"the value of {key!r:.80} is not valid base64") from None


def encode_value(value: bytes, encoding: Encoding) -> tuple[str, Encoding]:
    if encoding == "utf-8":
        try:
            return value.decode(), "utf-8"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(value).decode(), "base64"


class ReadOptions(BaseModel):
    """The query of a read: `?fill=lease&lease_ms=&wait_ms=` (see `docs.READ_OPENAPI`)."""

    fill: Literal["lease"] | None = None
    lease_ms: int = Field(5000, ge=1, le=MAX_LEASE_MS)
    wait_ms: int = Field(0, ge=0, le=MAX_WAIT_MS)

    @classmethod
    def of(cls, request: Request) -> ReadOptions:
        try:
            return cls.model_validate(dict(request.query_params))
        except ValidationError as exc:
            problems = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
            raise RequestValidationError(problems) from None


PLAIN_READ = ReadOptions()


class StoredEntry(BaseModel):
    """What a write stored: the new version (also the ETag), TTL resolved, and the tags."""

    key: str
    version: str
    content_type: str
    size: int = Field(description="bytes of the value")
    ttl_ms: int
    swr_ms: int
    tags: list[str]
    created: datetime

    @classmethod
    def of(cls, entry: Entry) -> StoredEntry:
        return cls(
            key=entry.key,
            version=entry.version,
            content_type=entry.content_type,
            size=len(entry.value),
            ttl_ms=entry.ttl_ms,
            swr_ms=entry.swr_ms,
            tags=sorted(entry.tags),
            created=entry.created,
        )


class MgetRequest(Body):
    keys: list[str] = Field(min_length=1, max_length=MAX_BATCH_KEYS)
    encoding: Encoding = "utf-8"


class FoundEntry(BaseModel):
    """One key of an mget: `found` false (and nothing else) on a miss."""

    key: str
    found: bool
    value: str | None = None
    encoding: Encoding | None = None
    content_type: str | None = None
    version: str | None = None
    ttl_ms: int | None = None
    tags: list[str] | None = None

    @classmethod
    def of(cls, key: str, entry: Entry | None, encoding: Encoding) -> FoundEntry:
        if entry is None:
            return cls(key=key, found=False)
        value, used = encode_value(entry.value, encoding)
        return cls(
            key=key,
            found=True,
            value=value,
            encoding=used,
            content_type=entry.content_type,
            version=entry.version,
            ttl_ms=entry.ttl_ms,
            tags=sorted(entry.tags),
        )


class MgetResponse(BaseModel):
    entries: list[FoundEntry] = Field(description="one per key asked, in the order asked")


class MsetItem(Body):
    key: str
    value: str
    content_type: str = DEFAULT_CONTENT_TYPE
    ttl: float | None = seconds("freshness in seconds; default: the namespace's")
    swr: float | None = seconds("stale-while-revalidate window in seconds")
    tags: list[str] = Field(default_factory=list)


class MsetRequest(Body):
    entries: list[MsetItem] = Field(min_length=1, max_length=MAX_BATCH_KEYS)
    encoding: Encoding = "utf-8"


class MsetResponse(BaseModel):
    entries: list[StoredEntry]


class InvalidateRequest(Body):
    """Exactly one of `tags` (every entry carrying any of them) or `prefix` (of keys)."""

    tags: list[str] | None = Field(default=None, min_length=1)
    prefix: str | None = Field(default=None, description='"" removes the whole namespace')

    @model_validator(mode="after")
    def _one_criterion(self) -> InvalidateRequest:
        if (self.tags is None) == (self.prefix is None):
            raise ValueError("give exactly one of tags or prefix")
        return self


class Invalidated(BaseModel):
    removed: int = Field(description="entries removed")


class AcquireLock(Body):
    ttl_ms: int = Field(ge=1, le=MAX_LOCK_TTL_MS, description="lease length")
    wait_ms: int = Field(0, ge=0, le=MAX_WAIT_MS, description="how long to wait for a holder")


class RenewLock(Body):
    token: str = Field(min_length=1, max_length=64)
    ttl_ms: int = Field(ge=1, le=MAX_LOCK_TTL_MS, description="the new lease, from now")


class CheckFence(Body):
    fence: int = Field(ge=1, description="the fence a write guarded by the lock carries")


class HeldLock(BaseModel):
    resource: str
    token: str = Field(description="send it to renew and release")
    fence: int = Field(description="grows with every acquire; guarded writes carry it")
    ttl_ms: int

    @classmethod
    def of(cls, lock: Lock) -> HeldLock:
        return cls(resource=lock.resource, token=lock.token, fence=lock.fence, ttl_ms=lock.ttl_ms)


class FillLeaseGrant(BaseModel):
    token: str = Field(description="send it back as the Fill-Lease header of the PUT that fills")
    ttl_ms: int = Field(description="how long the lease is yours")


class Miss(BaseModel):
    """The 404 problem of a miss. With `?fill=lease` it carries `lease` when this caller must
    fill the key, or `retry_after_ms` when another caller is filling it."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    namespace: str
    key: str
    lease: FillLeaseGrant | None = None
    retry_after_ms: int | None = None
