"""The cache service's settings: size limits, TTLs per namespace, metric labels, the Redis pool.

`OUTRIGGER_REDIS_URL` (from the kit) picks the adapter: `memory://` for the embedded one,
`redis://`, `rediss://` or `unix://` for Redis. TTLs per namespace are a JSON object in seconds:

    OUTRIGGER_CACHE_NAMESPACE_TTLS='{"users": {"default": 60, "max": 3600}}'

A namespace not listed there uses `OUTRIGGER_CACHE_DEFAULT_TTL_SECONDS` and
`OUTRIGGER_CACHE_MAX_TTL_SECONDS`; no TTL is above a year.

Namespaces are metric labels, so their number is bounded (see `services.cache.metrics`):
`OUTRIGGER_CACHE_METRIC_NAMESPACES=users,orders` always get labels of their own, and so do the
first `OUTRIGGER_CACHE_METRIC_NAMESPACE_LIMIT` (100) others seen (0: none); the rest are counted
as `other`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from outrigger.settings import Settings
from services.cache.domain import MAX_TTL_MS, NAMESPACE_PATTERN, CacheLimits, TtlPolicy

MIB = 1024 * 1024
MAX_TTL_SECONDS = MAX_TTL_MS // 1000


class NamespaceTtl(BaseModel):
    """One namespace's TTLs, in seconds (fractions allowed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: float = Field(ge=0.001, le=MAX_TTL_SECONDS)
    max: float = Field(ge=0.001, le=MAX_TTL_SECONDS)

    @model_validator(mode="after")
    def _default_within_max(self) -> NamespaceTtl:
        if self.default > self.max:
            raise ValueError(f"default {self.default:g} s is above max {self.max:g} s")
        return self

    def policy(self) -> TtlPolicy:
        return TtlPolicy(default_ms=round(self.default * 1000), max_ms=round(self.max * 1000))


class CacheSettings(Settings):
    cache_max_value_bytes: int = Field(MIB, ge=1, le=512 * MIB)
    cache_max_batch_bytes: int = Field(16 * MIB, ge=1, le=512 * MIB)
    cache_default_ttl_seconds: float = Field(300.0, ge=0.001, le=MAX_TTL_SECONDS)
    cache_max_ttl_seconds: float = Field(86_400.0, ge=0.001, le=MAX_TTL_SECONDS)
    cache_namespace_ttls: dict[str, NamespaceTtl] = Field(default_factory=dict)
    cache_metric_namespaces: Annotated[frozenset[str], NoDecode] = frozenset()
    cache_metric_namespace_limit: int = Field(100, ge=0, le=10_000)
    cache_key_prefix: str = Field("oc", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    cache_redis_pool_size: int = Field(50, ge=1, le=10_000)
    cache_redis_timeout_seconds: float = Field(2.0, gt=0)
    cache_sweep_interval_seconds: float = Field(1.0, gt=0)

    @field_validator("cache_metric_namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("cache_namespace_ttls", "cache_metric_namespaces")
    @classmethod
    def _namespace_names(cls, value: Any) -> Any:
        for name in value:
            if not NAMESPACE_PATTERN.fullmatch(name):
                raise ValueError(f"namespace {name!r} must be 1-64 characters of a-z, 0-9, _, -")
        return value

    @model_validator(mode="after")
    def _default_within_max(self) -> CacheSettings:
        if self.cache_default_ttl_seconds > self.cache_max_ttl_seconds:
            raise ValueError(
                f"cache_default_ttl_seconds {self.cache_default_ttl_seconds:g} is above "
                f"cache_max_ttl_seconds {self.cache_max_ttl_seconds:g}"
            )
        return self

    def limits(self) -> CacheLimits:
        """The domain's view of these settings, applied by the use-case room."""
        return CacheLimits(
            max_value_bytes=self.cache_max_value_bytes,
            max_batch_bytes=self.cache_max_batch_bytes,
            ttl=NamespaceTtl(
                default=self.cache_default_ttl_seconds, max=self.cache_max_ttl_seconds
            ).policy(),
            namespaces={name: ttl.policy() for name, ttl in self.cache_namespace_ttls.items()},
        )
