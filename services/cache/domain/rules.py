"""The rules every request obeys: namespaces, keys, tags, lock resources, sizes and TTLs.

The use-case room (`services.cache.service`) applies them once, before the port is called, so bad
input raises `InvalidInput` (422) or `TooLarge` (413) and changes nothing; adapters trust what
they are given. The API's schema declares the same patterns and bounds (from the constants here),
so every request the schema allows passes these rules, except the ones that depend on settings
(a namespace's TTL maximum, the size limits) or on several values at once (duplicate keys).
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
MAX_KEY_LENGTH = 512
KEY_PATTERN = re.compile(rf"[^\n]{{1,{MAX_KEY_LENGTH}}}")  # a route's {key:path} stops at \n
MAX_TAGS = 32
MAX_TAG_LENGTH = 256
TAG_CHARACTER = r"[^\x00-\x20,\x7f]"  # no space, control character or comma
TAG_PATTERN = re.compile(rf"{TAG_CHARACTER}{{1,{MAX_TAG_LENGTH}}}")
RESOURCE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,200}")
CONTENT_TYPE_PATTERN = re.compile(r"[\x21-\x7e]+/[\x20-\x7e]{1,250}")
MAX_BATCH_KEYS = 1000
MAX_LEASE_MS = 60_000
MAX_WAIT_MS = 60_000
MAX_LOCK_TTL_MS = 3_600_000
MAX_FENCE = 2**63 - 1
MAX_TTL_MS = 365 * 86_400_000  # the ceiling of every namespace's TTL and stale window
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
        if len(write.value) > self.max_value_bytes:
            raise TooLarge(
                f"the value of {write.key!r:.80} is {len(write.value):,} bytes; values are at "
                f"most {self.max_value_bytes:,} bytes (OUTRIGGER_CACHE_MAX_VALUE_BYTES)",
                max_value_bytes=self.max_value_bytes,
            )
        if not CONTENT_TYPE_PATTERN.fullmatch(write.content_type):
            raise InvalidInput(f"content type {write.content_type[:80]!r} is not type/subtype")
        check_tags(write.tags)
        policy = self.ttl_policy(namespace)
        ttl_ms = policy.default_ms if write.ttl_ms is None else write.ttl_ms
        for name, value, least in (("ttl", ttl_ms, 1), ("stale window", write.swr_ms, 0)):
            if not least <= value <= policy.max_ms:
                raise InvalidInput(
                    f"{name} {value} ms is outside {least}-{policy.max_ms} ms allowed in "
                    f"namespace {namespace!r}; ask for less or raise its max in "
                    "OUTRIGGER_CACHE_NAMESPACE_TTLS"
                )
        return replace(write, ttl_ms=ttl_ms)

    def prepare_batch(self, namespace: str, writes: Sequence[Write]) -> list[Write]:
        """Every write checked like `prepare`, the keys distinct, the values within the batch
        byte limit."""
        check_keys([write.key for write in writes])
        total = sum(len(write.value) for write in writes)
        if total > self.max_batch_bytes:
            raise TooLarge(
                f"the batch holds {total:,} bytes of values; at most {self.max_batch_bytes:,} "
                "(OUTRIGGER_CACHE_MAX_BATCH_BYTES): split it"
            )
        return [self.prepare(namespace, write) for write in writes]


def check_namespace(namespace: str) -> None:
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise InvalidInput(
            f"namespace {namespace[:80]!r} must be 1-64 characters of a-z, 0-9, _ and -"
        )


def check_key(key: str) -> None:
    if not KEY_PATTERN.fullmatch(key):
        reason = "holds a line feed" if "\n" in key else f"is {len(key):,} characters"
        raise InvalidInput(
            f"key {key[:80]!r} {reason}; keys are 1-{MAX_KEY_LENGTH} characters without line "
            "feeds (hash longer ones, e.g. with SHA-256)"
        )


def check_keys(keys: Sequence[str]) -> None:
    """A batch: 1-1,000 valid keys, each once."""
    if not 1 <= len(keys) <= MAX_BATCH_KEYS:
        raise InvalidInput(f"a batch holds 1-{MAX_BATCH_KEYS:,} keys, not {len(keys):,}")
    for key in keys:
        check_key(key)
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise InvalidInput(f"key {twice[:80]!r} appears twice in the batch")


def valid_tag(tag: str) -> bool:
    return TAG_PATTERN.fullmatch(tag) is not None


def check_tags(tags: Iterable[str]) -> None:
    tags = list(tags)
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"an entry has at most {MAX_TAGS} tags, not {len(tags)}")
    for tag in tags:
        if not valid_tag(tag):
            raise InvalidInput(
                f"tag {tag[:80]!r} must be 1-{MAX_TAG_LENGTH} characters without spaces, "
                "control characters or commas"
            )


def invalidation_tags(tags: Iterable[str]) -> list[str]:
    """The distinct tags to invalidate, sorted; at least one."""
    distinct = sorted(set(tags))
    if not distinct:
        raise InvalidInput("name at least one tag to invalidate")
    check_tags(distinct)
    return distinct


def check_prefix(prefix: str) -> None:
    """A key prefix to invalidate: "" (the whole namespace) or the start of a valid key."""
    if prefix:
        check_key(prefix)


def check_resource(resource: str) -> None:
    if not RESOURCE_PATTERN.fullmatch(resource):
        raise InvalidInput(
            f"lock resource {resource[:80]!r} must be 1-200 characters of A-Z, a-z, 0-9, _, . and -"
        )


def check_delete_condition(condition: WriteCondition) -> None:
    if condition.if_none_match_any:
        raise InvalidInput("a delete takes If-Match, not If-None-Match: *")
