"""The `Sandbox` contract against the worker pool, warm and cold; the pool built from settings."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from outrigger.testing import unique
from services.plugin_executor.adapters import build_sandbox
from services.plugin_executor.adapters.pool import WorkerPool
from services.plugin_executor.domain.models import Feature, Reason
from tests.plugin_executor.contract import SandboxContract
from tests.plugin_executor.sandbox_support import plugin


class TestWarm(SandboxContract):
    mode = "warm"

    async def test_a_worker_keeps_a_confined_child_ready_for_the_same_plugin_and_limits(
        self, new_adapter: Any
    ) -> None:
        pool = await new_adapter(size=1)
        echo, find = plugin("contract", "echo"), plugin("contract", "find_traces")
        assert (await pool.run(echo, {}, echo.limits)).reason is Reason.OK
        spare = await kept_ready(pool)
        for _ in range(200):  # announced once forked; it confines itself right after
            status = process_status(spare)
            if status["Seccomp"] == "2":
                break
            await asyncio.sleep(0.01)
        assert status["PPid"] == str(pool.worker_pids[0])
        assert status["Uid"].split()[0] == str(pool.uid_base)  # the run's uid already
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")  # confined already
        assert (await pool.run(echo, {"n": 1}, echo.limits)).result == {"echo": {"n": 1}}
        assert not alive(spare)  # it took that run, and was reaped
        for other, limits in [(find, find.limits), (find, replace(find.limits, memory_mib=100))]:
            spare = await kept_ready(pool, other_than=spare)
            outcome = await pool.run(other, {"name": "x"}, limits)
            assert outcome.reason is Reason.OK
            assert not alive(spare)  # dropped: another plugin, other limits

    @pytest.mark.parametrize("scrub", [True, False], ids=["scrubbed", "not-scrubbed"])
    async def test_the_next_run_inherits_nothing_of_an_earlier_runs_input_or_result(
        self, new_adapter: Any, scrub: bool
    ) -> None:
        """A run's process is the worker's fork: its memory is the worker's. Read as root
        through /proc, it holds the earlier run's input and result (freed, never overwritten)
        unless the worker scrubs what it frees."""
        pool = await new_adapter(size=1, scrub_memory=scrub)
        echo = plugin("contract", "echo")
        secret = unique("card-4111-") * 4  # an echo: the input, then the result
        assert (await pool.run(echo, {"card": secret, "pad": "x" * 4096}, echo.limits)).result
        assert (await pool.run(echo, {"n": 1}, echo.limits)).reason is Reason.OK
        [worker] = pool.worker_pids
        assert bool(memory_holding(worker, secret.encode())) is not scrub


def memory_holding(pid: int, needle: bytes) -> list[str]:
    """The writable mappings of process `pid` that hold `needle`."""
    found = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            where, mode, *_ = line.split()
            start, end = (int(address, 16) for address in where.split("-"))
            if "w" not in mode or end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    found.append(line.strip())
            except OSError:
                continue  # a mapping the kernel does not let /proc read
    return found


class TestCold(SandboxContract):
    mode = "cold"

    async def test_a_cold_worker_keeps_no_child_ready(self, adapter: WorkerPool) -> None:
        echo = plugin("contract", "echo")
        assert (await adapter.run(echo, {}, echo.limits)).reason is Reason.OK
        await asyncio.sleep(0.2)
        assert adapter.spare_pids == []


async def kept_ready(pool: WorkerPool, other_than: int | None = None) -> int:
    """The pid of the child the pool's one worker announced, once it has."""
    for _ in range(200):
        spares = [pid for pid in pool.spare_pids if pid != other_than]
        if spares:
            return spares[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the worker announced no child kept ready")


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def process_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as status:
        return {key: value.strip() for key, _, value in (line.partition(":") for line in status)}


@dataclass
class Settings:
    plugins_work_dir: Path
    plugins_pool_size: int = 3
    plugins_mode: str = "cold"
    plugins_required_features: frozenset[Feature] = frozenset({Feature.SECCOMP})
    plugins_job_uid_base: int = 62000
    plugins_queue_size: int = 5
    plugins_disk_mib: int = 48
    plugins_scrub_memory: bool = False


def test_build_sandbox_makes_the_pool_the_settings_describe(tmp_path: Path) -> None:
    pool = build_sandbox(Settings(tmp_path / "work"))
    assert isinstance(pool, WorkerPool)
    assert (pool.work_dir, pool.size, pool.mode) == (tmp_path / "work", 3, "cold")
    assert (pool.required, pool.uid_base, pool.queue_size) == ({Feature.SECCOMP}, 62000, 5)
    assert (pool.disk_mib, pool.scrub_memory) == (48, False)
    with pytest.raises(ValueError, match="plugins_mode is warm or cold, not 'hot'"):
        build_sandbox(Settings(tmp_path, plugins_mode="hot"))
