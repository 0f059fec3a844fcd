"""The plugin executor's settings: where plugins come from, the pool, the sandbox's required
layers, and each limit's default and ceiling.

`OUTRIGGER_PLUGIN_DIR` defaults to the repository's `plugins/` folder (the examples), for
development; a deployment points it at its own. `OUTRIGGER_PLUGINS_REQUIRED_FEATURES` is a
comma list of the sandbox's layers (`services.plugin_executor.domain.Feature`): the service
refuses to start on a host that lacks one of them.

Jobs' state is kept in the cache service at `OUTRIGGER_CACHE_URL` (the variable the
`outrigger cache` commands read too), or in this process's memory with `memory://`, the
embedded default (one replica only). The token it calls the cache with is
`OUTRIGGER_PLUGINS_CACHE_TOKEN` (scopes `cache:read cache:write`), else one the service mints
with its own signing key (an HS256 secret or an RS256 private key), renewed as it ages.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from outrigger.settings import Settings
from services.plugin_executor.domain import LIMITS, Feature, LimitPolicy, Limits

EXAMPLES = Path(__file__).resolve().parents[2] / "plugins"
"""The example plugins beside the code (in a checkout; an installed wheel has none)."""
DEFAULT_REQUIRED = frozenset({Feature.RLIMITS, Feature.SESSION, Feature.SECCOMP})

PoolMode = Literal["warm", "cold"]


class PluginSettings(Settings):
    plugin_dir: Path = Field(EXAMPLES, description="one folder per plugin, each with plugin.toml")
    plugins_pool_size: int = Field(2, ge=1, le=256, description="warm workers (one run each)")
    plugins_mode: PoolMode = Field(
        "warm", description="warm: fork each run from a warm worker; cold: a new worker per run"
    )
    plugins_required_features: Annotated[frozenset[Feature], NoDecode] = Field(
        DEFAULT_REQUIRED,
        description="comma list of sandbox layers the host must offer, else no start: "
        + ", ".join(feature.value for feature in Feature),
    )
    plugins_work_dir: Path = Field(
        default_factory=lambda: (
            Path(tempfile.gettempdir()) / f"outrigger-plugin-work-{os.getuid()}"
        ),
        description="runs' private work folders: outside the data directory, which only the "
        "service may enter, so runs under their own uids reach theirs "
        "(default <temp dir>/outrigger-plugin-work-<uid>)",
    )
    plugins_job_uid_base: int = Field(
        64000, ge=1000, le=2**31 - 1024, description="as root: worker i runs jobs as uid base+i"
    )
    plugins_disk_mib: int = Field(
        256,
        ge=1,
        le=1 << 20,
        description="what a run's work directory may hold (checked every 0.1 s; beyond, or "
        "beyond 10,000 files and folders, the run ends output_limit); one file at most 64 MiB",
    )
    plugins_scrub_memory: bool = Field(
        True,
        description="warm workers overwrite the memory they free, so a run's process holds "
        "nothing of an earlier run's input or result (another caller's); false: faster "
        "allocation-heavy plugins, for deployments whose callers may see each other's data",
    )
    plugins_queue_size: int = Field(
        64, ge=0, le=100_000, description="runs waiting for a worker at most (503 beyond)"
    )

    cache_url: str = Field(
        "memory://",
        description="jobs' state: the cache service's URL (http://host:8003), or memory:// "
        "to keep it in this process (one replica only)",
    )
    plugins_cache_token: SecretStr | None = Field(
        None,
        description="bearer token for the cache service (cache:read cache:write); default: "
        "minted with the service's own signing key",
    )
    plugins_cache_timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="each exchange with the cache service"
    )
    plugins_job_ttl_seconds: float = Field(
        86_400.0, ge=1, le=365 * 86_400, description="how long a job is kept after its last change"
    )
    plugins_jobs_queue: str = Field(
        "plugin-executor.jobs", min_length=1, max_length=200, description="the queue of jobs"
    )
    plugins_jobs_exchange: str = Field(
        "outrigger.jobs",
        min_length=1,
        max_length=200,
        description="jobs come as run.<plugin>, results go as result.<plugin>.<reason>",
    )
    plugins_notifications_exchange: str = Field(
        "outrigger.notifications",
        min_length=1,
        max_length=200,
        description="jobs' progress and results go to channel jobs.<id>",
    )
    plugins_jobs_prefetch: int = Field(
        4, ge=1, le=1000, description="jobs one replica takes from the queue at once"
    )
    plugins_progress_interval_seconds: float = Field(
        0.5, gt=0, le=60, description="a job's progress kept in the cache at most this often"
    )

    plugins_default_cpu_seconds: float = Field(5.0, gt=0)
    plugins_max_cpu_seconds: float = Field(60.0, gt=0)
    plugins_default_memory_mib: int = Field(256, ge=1)
    plugins_max_memory_mib: int = Field(2048, ge=1)
    plugins_default_wall_seconds: float = Field(10.0, gt=0)
    plugins_max_wall_seconds: float = Field(300.0, gt=0)
    plugins_default_output_kib: int = Field(1024, ge=1)
    plugins_max_output_kib: int = Field(16384, ge=1)

    @field_validator("plugins_required_features", mode="before")
    @classmethod
    def _features(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        names = [name.strip() for name in value.split(",") if name.strip()]
        known = {feature.value for feature in Feature}
        for name in names:
            if name not in known:
                features = ", ".join(sorted(known))
                raise ValueError(f"{name!r} is not a sandbox feature; the features are {features}")
        return frozenset(Feature(name) for name in names)

    @field_validator("cache_url")
    @classmethod
    def _cache_url(cls, value: str) -> str:
        if value != "memory://" and not value.startswith(("http://", "https://")):
            raise ValueError("expected http://host:8003 (the cache service) or memory://")
        return value.rstrip("/") if value != "memory://" else value

    @field_validator("plugin_dir", "plugins_work_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator(*(f"plugins_max_{name}" for name in LIMITS))
    @classmethod
    def _ceiling_above_default(cls, value: float, info: ValidationInfo) -> float:
        name = info.field_name.removeprefix("plugins_max_") if info.field_name else ""
        default = info.data.get(f"plugins_default_{name}")
        if default is not None and default > value:
            raise ValueError(f"below OUTRIGGER_PLUGINS_DEFAULT_{name.upper()} ({default})")
        return value

    def limit_policy(self) -> LimitPolicy:
        """Each limit's default and ceiling, as the manifest rules take them."""
        return LimitPolicy(
            defaults=Limits(
                cpu_seconds=self.plugins_default_cpu_seconds,
                memory_mib=self.plugins_default_memory_mib,
                wall_seconds=self.plugins_default_wall_seconds,
                output_kib=self.plugins_default_output_kib,
            ),
            ceilings=Limits(
                cpu_seconds=self.plugins_max_cpu_seconds,
                memory_mib=self.plugins_max_memory_mib,
                wall_seconds=self.plugins_max_wall_seconds,
                output_kib=self.plugins_max_output_kib,
            ),
        )
