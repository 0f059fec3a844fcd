"""What the cache API reads and writes: parameter rules, JSON bodies, and what a write stored.

Names and keys are declared with the domain's patterns and lengths (`*_SCHEMA`), which the
use-case room enforces with messages that say what to do; numbers are bounded here, where they
enter, with the same rule on every route that takes them (`Seconds`, `LeaseMs`, `WaitMs`, …).

Values in JSON travel as UTF-8 text (`"encoding": "utf-8"`, the default) or as base64
(`"encoding": "base64"`), chosen per request. A value read back as UTF-8 that is not valid UTF-8
comes back in base64, and its entry says so in its own `encoding`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime  # noqa: TC003 (pydantic resolves the annotation at runtime)
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from outrigger.errors import InvalidInput
from services.cache.domain import (
    CONTENT_TYPE_PATTERN,
    DEFAULT_CONTENT_TYPE,
    MAX_BATCH_KEYS,
    MAX_FENCE,
    MAX_KEY_LENGTH,
    MAX_LEASE_MS,
    MAX_LOCK_TTL_MS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TTL_MS,
    MAX_WAIT_MS,
    NAMESPACE_PATTERN,
    RESOURCE_PATTERN,
    TAG_CHARACTER,
)

if TYPE_CHECKING:
    from fastapi import Request

    from services.cache.domain import Entry, Lock

NOT_A_DOT_SEGMENT = r"(?!\.\.?$)"  # a client would resolve a path segment "." or ".." away
NAMESPACE_SCHEMA = {"pattern": f"^{NAMESPACE_PATTERN.pattern}$"}
KEY_SCHEMA = {"minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": r"^[^\n]*$"}
PATH_KEY_SCHEMA = {**KEY_SCHEMA, "pattern": rf"^{NOT_A_DOT_SEGMENT}[^\n]*$"}
TAG_SCHEMA = {"minLength": 1, "maxLength": MAX_TAG_LENGTH, "pattern": f"^{TAG_CHARACTER}*$"}
ONE_TAG = f"{TAG_CHARACTER}{{1,{MAX_TAG_LENGTH}}}"
TAG_LIST_PATTERN = f"^({ONE_TAG}(,{ONE_TAG}){{0,{MAX_TAGS - 1}}})?$"
PREFIX_SCHEMA = {"type": "string", "maxLength": MAX_KEY_LENGTH, "pattern": r"^[^\n]*$"}
RESOURCE_SCHEMA = {"pattern": f"^{NOT_A_DOT_SEGMENT}{RESOURCE_PATTERN.pattern}$"}
CONTENT_TYPE_SCHEMA = {"pattern": f"^{CONTENT_TYPE_PATTERN.pattern}$"}
BASE64_PATTERN = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
MAX_TTL_SECONDS = MAX_TTL_MS // 1000

Key = Annotated[str, Field(json_schema_extra=KEY_SCHEMA)]
Tag = Annotated[str, Field(json_schema_extra=TAG_SCHEMA)]
Tags = Annotated[list[Tag], Field(min_length=1, max_length=MAX_TAGS)]
Seconds = Annotated[float, Field(ge=0.001, le=MAX_TTL_SECONDS, allow_inf_nan=False)]
Window = Annotated[float, Field(ge=0, le=MAX_TTL_SECONDS, allow_inf_nan=False)]
# Optional values, documented without `null`: a client leaves the field out instead.
MaybeSeconds = Annotated[Seconds | None, WithJsonSchema(TypeAdapter(Seconds).json_schema())]
MaybeTags = Annotated[Tags | None, WithJsonSchema(TypeAdapter(Tags).json_schema())]
Fill = Literal["lease"]
MaybeFill = Annotated[Fill | None, WithJsonSchema(TypeAdapter(Fill).json_schema())]
LeaseMs = Annotated[int, Field(ge=1, le=MAX_LEASE_MS)]
WaitMs = Annotated[int, Field(ge=0, le=MAX_WAIT_MS)]
LockTtlMs = Annotated[int, Field(ge=1, le=MAX_LOCK_TTL_MS)]
TTL = (
    "freshness in seconds (fractions allowed, whole milliseconds kept); default and maximum: "
    "the namespace's (OUTRIGGER_CACHE_NAMESPACE_TTLS, else 300 s and 86,400 s)"
)
SWR = "stale-while-revalidate window in seconds after the TTL (served to fill=lease readers)"
Encoding = Literal["utf-8", "base64"]


def milliseconds(seconds: float) -> int:
    """Seconds as given (bounded by `Seconds` or `Window`) in whole milliseconds."""
    return round(seconds * 1000)


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
    """The query of a read, parsed by the read itself (`entries.read_entry`)."""

    fill: MaybeFill = Field(
        None,
        description=(
            "`lease`: on a miss, the first caller gets a fill lease (404 with `lease`, or the "
            "stale copy with a `Fill-Lease` header) and fills the key with PUT + `Fill-Lease`; "
            "the others get the stale copy at once, or wait up to `wait_ms` for the fill, then "
            "a 404 with `retry_after_ms` and `Retry-After`."
        ),
    )
    lease_ms: LeaseMs = Field(5000, description="with fill=lease: the lease length")
    wait_ms: WaitMs = Field(0, description="with fill=lease: how long to wait for another's fill")

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
    keys: list[Key] = Field(
        min_length=1, max_length=MAX_BATCH_KEYS, json_schema_extra={"uniqueItems": True}
    )
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
    key: Key
    value: str
    content_type: Annotated[str, Field(json_schema_extra=CONTENT_TYPE_SCHEMA)] = (
        DEFAULT_CONTENT_TYPE
    )
    ttl: MaybeSeconds = Field(None, description=TTL)
    swr: Window = Field(0, description=SWR)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)


class MsetRequest(Body):
    """With `"encoding": "base64"` every value is base64 (RFC 4648, padded)."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"encoding": {"const": "base64"}}, "required": ["encoding"]},
            "then": {
                "properties": {
                    "entries": {"items": {"properties": {"value": {"pattern": BASE64_PATTERN}}}}
                }
            },
        }
    )

    entries: list[MsetItem] = Field(min_length=1, max_length=MAX_BATCH_KEYS)
    encoding: Encoding = "utf-8"


class MsetResponse(BaseModel):
    entries: list[StoredEntry]


class InvalidateRequest(Body):
    """Exactly one of `tags` (every entry carrying any of them) or `prefix` (of keys)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["tags"]}, {"required": ["prefix"]}]}
    )

    tags: MaybeTags = None
    prefix: Annotated[str | None, WithJsonSchema(PREFIX_SCHEMA)] = Field(
        None, description='the start of the keys to remove; "" removes the whole namespace'
    )

    @model_validator(mode="after")
    def _one_criterion(self) -> InvalidateRequest:
        if (self.tags is None) == (self.prefix is None):
            raise ValueError("give exactly one of tags or prefix")
        return self


class Invalidated(BaseModel):
    removed: int = Field(description="entries removed")


class AcquireLock(Body):
    ttl_ms: LockTtlMs = Field(description="lease length")
    wait_ms: WaitMs = Field(0, description="how long to wait for a holder")


class RenewLock(Body):
    token: str = Field(min_length=1, max_length=64)
    ttl_ms: LockTtlMs = Field(description="the new lease, from now")


class CheckFence(Body):
    fence: int = Field(ge=1, le=MAX_FENCE, description="the fence a guarded write carries")


class HeldLock(BaseModel):
    resource: str
    token: str = Field(description="send it to renew and release")
    fence: int = Field(description="grows with every acquire; guarded writes carry it")
    ttl_ms: int

    @classmethod
    def of(cls, lock: Lock) -> HeldLock:
        return cls(resource=lock.resource, token=lock.token, fence=lock.fence, ttl_ms=lock.ttl_ms)
