"""The rules every write and name obeys: namespaces, keys, tags, resources, sizes and TTLs.

Every adapter checks its input with these before touching anything, so bad input raises
`InvalidInput` (422) or `TooLarge` (413) and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from outrigger.errors import InvalidInput, TooLarge
from services.cache.domain.models import TtlPolicy

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from services.cache.domain.models import Write, WriteCondition

NAMESPACE_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
RESOURCE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,200}")
TAG_FORBIDDEN = re.compile(r"[\x00-\x20,\x7f]")
MAX_KEY_BYTES = 512
MAX_BATCH_KEYS = 1000
MAX_TAGS = 32
MAX_TAG_BYTES = 256
MAX_LEASE_MS = 60_000
MAX_WAIT_MS = 60_000
MAX_LOCK_TTL_MS = 3_600_000
CONTENT_TYPE_PATTERN = re.compile(r"[\x21-\x7e]+/[\x20-\x7e]{1,250}")
DEFAULT_TTL = TtlPolicy(default_ms=300_000, max_ms=86_400_000)


@dataclass(frozen=True, slots=True)
class CacheLimits:
    """Size and TTL rules; `namespaces` overrides `ttl` per namespace."""

    max_value_bytes: int = 1024 * 1024
    max_batch_bytes: int = 16 * 1024 * 1024
    ttl: TtlPolicy = DEFAULT_TTL
    namespaces: Mapping[str, TtlPolicy] = field(default_factory=dict)

    def ttl_policy(self, namespace: str) -> TtlPolicy:
        return self.namespaces.get(namespace, self.ttl)

    def prepare(self, namespace: str, write: Write) -> Write:
        """The write checked against every rule, with its TTL resolved."""
        check_namespace(namespace)
        check_key(write.key)
        if not isinstance(write.value, bytes):
            raise InvalidInput(f"the value of {write.key!r} must be bytes")
        if len(write.value) > self.max_value_bytes:
            raise TooLarge(
                f"the value of {write.key!r} is {len(write.value):,} bytes; values are at most "
                f"{self.max_value_bytes:,} bytes (OUTRIGGER_CACHE_MAX_VALUE_BYTES)"
            )
        content_type = write.content_type
        if not isinstance(content_type, str) or not CONTENT_TYPE_PATTERN.fullmatch(content_type):
            raise InvalidInput(f"content type {str(content_type)[:80]!r} is not type/subtype")
        if isinstance(write.tags, str):
            raise InvalidInput("tags must be a set of strings, not one string")
        check_tags(write.tags)
        policy = self.ttl_policy(namespace)
        ttl_ms = policy.default_ms if write.ttl_ms is None else write.ttl_ms
        for name, value, least in (("ttl", ttl_ms, 1), ("stale window", write.swr_ms, 0)):
            check_range(f"{name} (ms)", value, 0, 2**53)
            if not least <= value <= policy.max_ms:
                raise InvalidInput(
                    f"{name} {value} ms is outside {least}-{policy.max_ms} ms allowed in "
                    f"namespace {namespace!r}; ask for less or raise its max in "
                    "OUTRIGGER_CACHE_NAMESPACE_TTLS"
                )
        return replace(write, ttl_ms=ttl_ms, tags=frozenset(write.tags))

    def prepare_batch(self, namespace: str, writes: Sequence[Write]) -> list[Write]:
        check_keys([write.key for write in writes])
        total = sum(len(write.value) for write in writes if isinstance(write.value, bytes))
        if total > self.max_batch_bytes:
            raise TooLarge(
                f"the batch holds {total:,} bytes of values; at most {self.max_batch_bytes:,} "
                "(OUTRIGGER_CACHE_MAX_BATCH_BYTES): split it"
            )
        return [self.prepare(namespace, write) for write in writes]


def check_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or not NAMESPACE_PATTERN.fullmatch(namespace):
        raise InvalidInput(
            f"namespace {str(namespace)[:80]!r} must be 1-64 characters of a-z, 0-9, _ and -"
        )


def check_key(key: str) -> None:
    try:
        size = len(key.encode())
    except (AttributeError, UnicodeEncodeError):
        raise InvalidInput(f"key {key!r:.80} must be a valid Unicode string") from None
    if not 1 <= size <= MAX_KEY_BYTES:
        raise InvalidInput(
            f"key is {size} bytes in UTF-8; keys are 1-{MAX_KEY_BYTES} bytes "
            "(hash longer ones, e.g. with SHA-256)"
        )


def check_keys(keys: Sequence[str]) -> None:
    """A batch: 1-1,000 valid keys, each once."""
    if not 1 <= len(keys) <= MAX_BATCH_KEYS:
        raise InvalidInput(f"a batch holds 1-{MAX_BATCH_KEYS:,} keys, not {len(keys):,}")
    for key in keys:
        check_key(key)
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise InvalidInput(f"key {twice!r:.80} appears twice in the batch")


def check_tags(tags: Iterable[str]) -> None:
    tags = list(tags)
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"an entry has at most {MAX_TAGS} tags, not {len(tags)}")
    for tag in tags:
        try:
            size = len(tag.encode())
        except (AttributeError, UnicodeEncodeError):
            size = 0
        if not 1 <= size <= MAX_TAG_BYTES or TAG_FORBIDDEN.search(tag):
            raise InvalidInput(
                f"tag {tag!r:.80} must be 1-{MAX_TAG_BYTES} bytes of UTF-8 without spaces, "
                "control characters or commas"
            )


def invalidation_tags(tags: Iterable[str]) -> list[str]:
    """The distinct tags to invalidate, sorted; at least one."""
    distinct = sorted(set(tags))
    if not distinct:
        raise InvalidInput("name at least one tag to invalidate")
    check_tags(distinct)
    return distinct


def check_resource(resource: str) -> None:
    if not isinstance(resource, str) or not RESOURCE_PATTERN.fullmatch(resource):
        raise InvalidInput(
            f"lock resource {str(resource)[:80]!r} must be 1-200 characters of A-Z, a-z, 0-9, "
            "_, . and -"
        )


def check_range(name: str, value: int, least: int, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise InvalidInput(f"{name} must be a whole number from {least:,} to {most:,}, not {value}")


def check_delete_condition(condition: WriteCondition) -> None:
    if condition.if_none_match_any:
        raise InvalidInput("a delete takes If-Match, not If-None-Match: *")
