"""What a valid audit record, query and proof request is; and how a record becomes its leaf.

The leaf body is the canonical JSON of the record as stored: keys sorted, no spaces, times in
RFC 3339 UTC with microseconds, sensitive fields already encrypted. It is hashed once, when
stored, and never re-encoded: verifiers hash the bytes they are given (`/v1/export` ships them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from outrigger.errors import InvalidInput, TooLarge
from outrigger.merkle import leaf_hash
from outrigger.stealth.paths import parse as parse_path
from services.audit.domain.models import OUTCOMES, AuditRecord, Leaf

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_RECORDS_PER_REQUEST = 1000
MAX_PAGE_LIMIT = 1000
MAX_DATA_BYTES = 64 * 1024
MAX_TEXT_LENGTH = 500
MAX_SENSITIVE_PATHS = 32
# Indexes and tree sizes: bounded to what every JSON reader keeps exactly (I-JSON, RFC 7493).
MAX_INDEX = 2**53 - 1

# No control character and no whitespace, spelled out so that Python and JSON Schema (ECMA-262)
# regular expressions read it the same.
TOKEN_PATTERN = (
    r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]{1,200}$"
)
"""Record ids, sources and types."""
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_TOKEN = re.compile(TOKEN_PATTERN)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
_TENANT = re.compile(TENANT_PATTERN)
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def check_token(what: str, value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise InvalidInput(
            f"{what} must be 1-200 characters without spaces or control characters "
            f"(got {str(value)[:80]!r})"
        )
    return value


def check_tenant(tenant: object) -> str:
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise InvalidInput(
            "tenant must be 1-63 characters of a-z 0-9 _ -, starting with a letter or digit "
            f"(got {str(tenant)[:80]!r})"
        )
    return tenant


def check_text(what: str, value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT_LENGTH:
        raise InvalidInput(f"{what} must be 1-{MAX_TEXT_LENGTH} characters")
    if _CONTROL.search(value):
        raise InvalidInput(f"{what} must not contain control characters")
    return value


def check_index(what: str, value: int, *, minimum: int = 0) -> int:
    if not minimum <= value <= MAX_INDEX:
        raise InvalidInput(f"{what} must be between {minimum} and {MAX_INDEX} (got {value})")
    return value


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_LIMIT} (got {limit})")
    return limit


def check_record(record: AuditRecord) -> AuditRecord:
    """`record` if every field is valid; InvalidInput (or TooLarge for `data`) naming the first
    that is not."""
    check_token("id", record.id)
    check_token("source", record.source)
    check_token("type", record.type)
    check_tenant(record.tenant)
    for name in ("actor", "action", "resource"):
        check_text(name, getattr(record, name))
    if record.outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)} (got {record.outcome!r})")
    if record.time.tzinfo is None:
        raise InvalidInput("time must carry a timezone (RFC 3339)")
    try:
        record.time.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("time must be a moment between years 1 and 9999 in UTC") from None
    if not isinstance(record.data, dict):
        raise InvalidInput("data must be a JSON object")
    if len(orjson.dumps(record.data)) > MAX_DATA_BYTES:
        raise TooLarge(f"data must be at most {MAX_DATA_BYTES} bytes of JSON")
    if len(record.sensitive) > MAX_SENSITIVE_PATHS:
        raise InvalidInput(f"at most {MAX_SENSITIVE_PATHS} sensitive paths")
    for path in record.sensitive:
        parse_path(path)
    if record.subject is not None:
        check_token("subject", record.subject)
    return record


def check_batch(records: Sequence[AuditRecord]) -> None:
    if not 1 <= len(records) <= MAX_RECORDS_PER_REQUEST:
        raise InvalidInput(f"send 1 to {MAX_RECORDS_PER_REQUEST} records (got {len(records)})")
    for record in records:
        check_record(record)


def leaf_of(stored: AuditRecord, recorded_at: datetime) -> Leaf:
    """The leaf of a record whose sensitive fields are already encrypted."""
    body = orjson.dumps(document(stored, recorded_at), option=_OPTIONS)
    return Leaf(stored, recorded_at, body, leaf_hash(body))


def document(record: AuditRecord, recorded_at: datetime) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "type": record.type,
        "time": record.time.astimezone(UTC),
        "actor": record.actor,
        "action": record.action,
        "resource": record.resource,
        "outcome": record.outcome,
        "tenant": record.tenant,
        "data": record.data,
        "sensitive": list(record.sensitive),
        "subject": record.subject,
        "recorded_at": recorded_at.astimezone(UTC),
    }


def parse_leaf(body: bytes) -> Leaf:
    """The leaf a stored body holds (InvalidInput if it is not one)."""
    try:
        doc = orjson.loads(body)
        record = AuditRecord(
            id=doc["id"],
            source=doc["source"],
            type=doc["type"],
            time=datetime.fromisoformat(doc["time"]),
            actor=doc["actor"],
            action=doc["action"],
            resource=doc["resource"],
            outcome=doc["outcome"],
            tenant=doc["tenant"],
            data=doc["data"],
            sensitive=tuple(doc["sensitive"]),
            subject=doc["subject"],
        )
        recorded_at = datetime.fromisoformat(doc["recorded_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not an audit leaf: {exc}") from exc
    return Leaf(record, recorded_at, body, leaf_hash(body))


def columns(leaf: Leaf) -> tuple[str, str, str, str, datetime]:
    """The query columns a records row keeps beside its body (the last five of a `ScannedRow`)."""
    record = leaf.record
    return (record.type, record.actor, record.resource, record.outcome, record.time)


def body_columns(body: bytes) -> tuple[str, tuple[str, str, str, str, datetime]]:
    """The tenant and the query columns of a stored body, read without building its record
    (what verify needs of every row); InvalidInput if it is not an audit leaf."""
    try:
        doc = orjson.loads(body)
        time = datetime.fromisoformat(doc["time"])
        return doc["tenant"], (doc["type"], doc["actor"], doc["resource"], doc["outcome"], time)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not an audit leaf: {exc}") from exc
