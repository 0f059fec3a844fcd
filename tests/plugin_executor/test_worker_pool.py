"""The `Sandbox` contract against the worker pool, warm and cold; the pool built from settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from services.plugin_executor.adapters import build_sandbox
from services.plugin_executor.adapters.pool import WorkerPool
from services.plugin_executor.domain.models import Feature
from tests.plugin_executor.contract import SandboxContract


class TestWarm(SandboxContract):
    mode = "warm"


class TestCold(SandboxContract):
    mode = "cold"


@dataclass
class Settings:
    plugins_work_dir: Path
    plugins_pool_size: int = 3
    plugins_mode: str = "cold"
    plugins_required_features: frozenset[Feature] = frozenset({Feature.SECCOMP})
    plugins_job_uid_base: int = 62000
    plugins_queue_size: int = 5


def test_build_sandbox_makes_the_pool_the_settings_describe(tmp_path: Path) -> None:
    pool = build_sandbox(Settings(tmp_path / "work"))
    assert isinstance(pool, WorkerPool)
    assert (pool.work_dir, pool.size, pool.mode) == (tmp_path / "work", 3, "cold")
    assert (pool.required, pool.uid_base, pool.queue_size) == ({Feature.SECCOMP}, 62000, 5)
    with pytest.raises(ValueError, match="plugins_mode is warm or cold, not 'hot'"):
        build_sandbox(Settings(tmp_path, plugins_mode="hot"))
