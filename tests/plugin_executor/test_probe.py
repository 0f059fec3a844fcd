"""What the probe reports about the host, and the pool refusing to start below its minimum."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from services.plugin_executor.adapters.confinement import landlock_abi
from services.plugin_executor.adapters.pool import WorkerPool
from services.plugin_executor.adapters.probe import DISABLED, probe, require
from services.plugin_executor.domain.errors import SandboxUnavailable
from services.plugin_executor.domain.models import Feature, Features, Reason
from tests.plugin_executor.sandbox_support import (
    LEVELS,
    plugin,
    run_processes,
    started,
    uid_base,
    work_root,
)

if TYPE_CHECKING:
    from pathlib import Path

UNPRIVILEGED = LEVELS[1]


def test_every_feature_is_either_active_or_says_why_not(tmp_path: Path) -> None:
    features = probe(
        job_uid=None,
        network="no network namespace here",
        work_dir=str(tmp_path),
        readable=(),
        disabled={Feature.SECCOMP},
    )
    assert features.active | features.detail.keys() == set(Feature)
    assert not features.active & features.detail.keys()
    assert {Feature.RLIMITS, Feature.SESSION} <= features.active
    assert features.detail[Feature.SECCOMP] == DISABLED
    assert features.detail[Feature.NETWORK_NAMESPACE] == "no network namespace here"
    assert "not root" in features.detail[Feature.SEPARATE_UID]


async def test_as_root_runs_get_uids_of_their_own_and_every_layer_the_host_has() -> None:
    with work_root() as root:
        async with started(root, size=1) as pool:
            features = pool.features()
    expected = {Feature.RLIMITS, Feature.SESSION, Feature.SEPARATE_UID, Feature.SECCOMP}
    assert expected <= features.active
    assert (Feature.LANDLOCK in features.active) == (landlock_abi() > 0)


async def test_unprivileged_workers_say_that_their_runs_share_their_uid() -> None:
    with work_root() as root:
        async with started(root, size=1, **UNPRIVILEGED.options(uid_base())) as pool:
            features = pool.features()
    assert Feature.SEPARATE_UID not in features.active
    assert "not root: runs share that uid" in features.detail[Feature.SEPARATE_UID]
    assert {Feature.RLIMITS, Feature.SESSION, Feature.SECCOMP} <= features.active


async def test_a_disabled_layer_is_reported_and_not_applied() -> None:
    read = plugin("abuse", "read_file")
    with work_root() as root:
        async with started(root, [read], size=1, disabled={Feature.LANDLOCK}) as pool:
            assert pool.features().detail[Feature.LANDLOCK] == DISABLED
            outcome = await pool.run(read, {"path": "/etc/passwd"}, read.limits)
    assert outcome.reason is Reason.OK
    assert outcome.result is not None
    assert "root:" in outcome.result["text"]


async def test_a_missing_required_feature_refuses_to_start_in_one_line() -> None:
    required = {Feature.SEPARATE_UID, Feature.SECCOMP}
    with work_root() as root:
        pool = WorkerPool(
            work_dir=root / "pool", required=required, **UNPRIVILEGED.options(uid_base())
        )
        with pytest.raises(SandboxUnavailable) as refused:
            await pool.start()
        await pool.close()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("the host lacks required sandbox features (separate_uid: ")
    assert "seccomp" not in message
    assert pool.worker_pids == []
    assert await run_processes(pool) == []


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o700)  # root's own: the workers' uid cannot pass through it
    return tmp_path


async def test_a_work_dir_the_workers_cannot_reach_refuses_to_start(private_dir: Path) -> None:
    tmp_path = private_dir
    pool = WorkerPool(work_dir=tmp_path / "work", **UNPRIVILEGED.options(uid_base()))
    with pytest.raises(SandboxUnavailable, match="cannot write its work dir"):
        await pool.start()
    await pool.close()
    assert pool.worker_pids == []


def test_require_names_each_missing_feature_with_its_reason() -> None:
    features = Features(
        frozenset({Feature.RLIMITS}),
        {Feature.SECCOMP: "prctl refused", Feature.LANDLOCK: "no Landlock"},
    )
    require(features, {Feature.RLIMITS})
    with pytest.raises(SandboxUnavailable) as refused:
        require(features, {Feature.RLIMITS, Feature.SECCOMP, Feature.LANDLOCK})
    assert str(refused.value) == (
        "the host lacks required sandbox features (landlock: no Landlock; seccomp: prctl refused)"
    )
