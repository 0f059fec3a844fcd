"""The plugin executor's owned adapter: `WorkerPool`, sandboxed workers that run each plugin in a
confined process (`pool.py`, `worker.py`, `confinement.py`, `probe.py`).

`build_sandbox` builds it from the settings; the app calls it inside its lifespan, then
`await sandbox.start()` (which refuses to start below the required features) and, on shutdown,
`await sandbox.close()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from services.plugin_executor.domain.models import Feature
    from services.plugin_executor.domain.port import Sandbox


class SandboxSettings(Protocol):
    """What `build_sandbox` reads (`PluginSettings` has it)."""

    @property
    def plugins_work_dir(self) -> Path: ...
    @property
    def plugins_pool_size(self) -> int: ...
    @property
    def plugins_mode(self) -> str: ...
    @property
    def plugins_required_features(self) -> frozenset[Feature]: ...
    @property
    def plugins_job_uid_base(self) -> int: ...
    @property
    def plugins_queue_size(self) -> int: ...
    @property
    def plugins_disk_mib(self) -> int: ...
    @property
    def plugins_scrub_memory(self) -> bool: ...


def build_sandbox(settings: SandboxSettings) -> Sandbox:
    """The worker pool the settings describe (not started)."""
    from services.plugin_executor.adapters.pool import WorkerPool

    if settings.plugins_mode not in ("warm", "cold"):
        raise ValueError(f"plugins_mode is warm or cold, not {settings.plugins_mode!r}")
    return WorkerPool(
        work_dir=settings.plugins_work_dir,
        size=settings.plugins_pool_size,
        mode="cold" if settings.plugins_mode == "cold" else "warm",
        required=settings.plugins_required_features,
        uid_base=settings.plugins_job_uid_base,
        queue_size=settings.plugins_queue_size,
        disk_mib=settings.plugins_disk_mib,
        scrub_memory=settings.plugins_scrub_memory,
    )
