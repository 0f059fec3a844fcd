"""The abuse suite: plugins that try to escape the sandbox or hurt the host, each contained and
ended with the right reason, at every isolation level this machine offers (`LEVELS`: root, runs
under uids of their own; unprivileged, workers started as one plain uid; container, the same
without namespaces). After each run no process of it is left, and after each test nothing
of the runs is left in the work root, /tmp or /dev/shm (`sandbox_support.started`).

Heavy cases run under tight limits (1-2 s, 64 MiB) to keep the suite quick.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import services
from outrigger.testing import unique
from services.plugin_executor.domain.models import Feature, Reason
from tests.plugin_executor.sandbox_support import (
    LEVELS,
    Level,
    contents,
    on_host,
    plugin,
    plugins_of,
    run_processes,
    started,
    uid_base,
    work_root,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from services.plugin_executor.adapters.pool import WorkerPool
    from services.plugin_executor.domain.models import Outcome

SECRET = unique("secret-")
DISK_MIB = 96  # above the file-size limit (64 MiB): a huge file meets that one first


@pytest.fixture(params=LEVELS, ids=lambda level: level.name)
def level(request: pytest.FixtureRequest) -> Level:
    level: Level = request.param
    return level


@pytest.fixture
async def pool(level: Level, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WorkerPool]:
    monkeypatch.setenv("OUTRIGGER_PLUGINS_TEST_SECRET", SECRET)  # the service's environment
    with work_root() as root:
        options = level.options(uid_base())
        async with started(root, plugins_of("abuse"), size=1, disk_mib=DISK_MIB, **options) as pool:
            yield pool


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder outside the sandbox that DAC would let a run write (so only the sandbox can
    stop it), holding a canary file."""
    folder = Path(tempfile.mkdtemp(prefix="outrigger-outside-"))
    folder.chmod(0o777)
    (folder / "canary").write_text(SECRET)
    (folder / "canary").chmod(0o644)
    try:
        yield folder
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


async def abuse(pool: WorkerPool, function: str, payload: Any = None, **limits: Any) -> Outcome:
    """Runs the abuse plugin's `function`; no process of the run may outlive it."""
    attempt = plugin("abuse", function, **limits)
    outcome = await pool.run(attempt, payload or {}, attempt.limits)
    assert await run_processes(pool) == []
    if outcome.detail is not None:
        assert SECRET not in outcome.detail
    return outcome


async def test_a_fork_bomb_is_stopped_at_the_wall_clock(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "fork_bomb", wall_seconds=1.5)
    assert outcome.reason is Reason.TIMEOUT


async def test_a_memory_bomb_ends_at_its_memory_limit(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "memory_bomb", memory_mib=64)
    assert outcome.reason is Reason.MEMORY_LIMIT
    assert outcome.usage.max_rss_kib < 128 * 1024


async def test_an_infinite_loop_ends_at_its_cpu_limit(pool: WorkerPool) -> None:
    # a wall limit far above the CPU one: on a loaded machine one CPU second takes many more
    outcome = await abuse(pool, "infinite_loop", cpu_seconds=1, wall_seconds=30)
    assert outcome.reason is Reason.CPU_LIMIT
    assert outcome.usage.cpu_s > 0.9  # the limit counts in ticks


async def test_cpu_burnt_inside_c_code_ends_at_the_cpu_limit(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "catastrophic_regex", cpu_seconds=1, wall_seconds=30)
    assert outcome.reason is Reason.CPU_LIMIT


async def test_a_plugin_that_ignores_signals_and_never_yields_is_killed(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "stubborn", cpu_seconds=10, wall_seconds=1)
    assert outcome.reason is Reason.TIMEOUT


async def test_a_stdout_flood_is_cut_at_the_output_limit(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "stdout_flood", output_kib=64)
    assert outcome.reason is Reason.OUTPUT_LIMIT


async def test_a_huge_file_stops_at_the_file_size_limit(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "huge_file")
    assert outcome.reason is Reason.OUTPUT_LIMIT
    assert outcome.detail is not None
    assert "file-size limit" in outcome.detail


async def test_files_below_the_size_limit_stop_at_the_work_dir_budget(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "many_files", wall_seconds=60)
    assert outcome.reason is Reason.OUTPUT_LIMIT
    assert outcome.detail == f"the work directory went past {DISK_MIB} MiB"


async def test_a_million_empty_files_stop_at_the_work_dir_entries(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "inode_bomb", wall_seconds=60)
    assert outcome.reason is Reason.OUTPUT_LIMIT
    assert outcome.detail == "the work directory went past 10000 files and folders"


async def test_tmp_and_dev_shm_cannot_be_filled_and_the_next_run_sees_nothing(
    pool: WorkerPool,
) -> None:
    name = unique("filled-")
    filled = await abuse(pool, "fill_tmp", {"name": name})
    assert filled.reason is Reason.OK
    assert filled.result == {"filled": {"/tmp": False, "/dev/shm": False}}
    seen = await abuse(pool, "find_tmp", {"name": name})
    assert seen.result == {"/tmp": False, "/dev/shm": False}


async def test_without_landlock_what_a_run_leaves_in_tmp_is_removed_after_it() -> None:
    with work_root() as root:
        abuse_plugins = plugins_of("abuse")
        async with started(root, abuse_plugins, size=1, disabled={Feature.LANDLOCK}) as pool:
            name = unique("filled-")
            filled = await abuse(pool, "fill_tmp", {"name": name})
            assert filled.result == {"filled": {"/tmp": True, "/dev/shm": True}}
            assert on_host(name) == {"/tmp": False, "/dev/shm": False}
            seen = await abuse(pool, "find_tmp", {"name": name})
            assert seen.result == {"/tmp": False, "/dev/shm": False}


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", services.__file__, "/proc/self/environ"],
    ids=["etc-passwd", "service-files", "proc"],
)
async def test_files_outside_the_sandbox_are_denied(pool: WorkerPool, path: str) -> None:
    outcome = await abuse(pool, "read_file", {"path": path})
    assert (outcome.reason, outcome.result) == (Reason.SANDBOX_VIOLATION, None)


async def test_a_secrets_folder_is_never_visible(pool: WorkerPool, shared_folder: Path) -> None:
    outcome = await abuse(pool, "read_file", {"path": str(shared_folder / "canary")})
    assert (outcome.reason, outcome.result) == (Reason.SANDBOX_VIOLATION, None)


async def test_the_environment_is_empty(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "environment")
    assert outcome.result == {"environment": {}}


async def test_a_socket_to_a_listening_local_port_is_refused(pool: WorkerPool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        outcome = await abuse(pool, "connect", {"port": port})
        assert outcome.reason is Reason.SANDBOX_VIOLATION
        with pytest.raises(BlockingIOError):
            listener.accept()


async def test_a_unix_socket_anyone_may_connect_to_is_refused(
    pool: WorkerPool, shared_folder: Path
) -> None:
    """As PostgreSQL's /var/run/postgresql/.s.PGSQL.5432 (mode 0777): DAC lets every uid in."""
    path = shared_folder / "server.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        path.chmod(0o777)
        listener.listen()
        listener.setblocking(False)
        outcome = await abuse(pool, "connect_unix", {"path": str(path)})
        assert outcome.reason is Reason.SANDBOX_VIOLATION
        with pytest.raises(BlockingIOError):
            listener.accept()


async def test_a_datagram_socket_pair_reaches_no_path_socket(
    pool: WorkerPool, shared_folder: Path
) -> None:
    path = shared_folder / "log.sock"  # as /dev/log: any uid may send to it
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        path.chmod(0o777)
        listener.setblocking(False)
        outcome = await abuse(pool, "dgram_pair", {"path": str(path)})
        assert outcome.reason is Reason.SANDBOX_VIOLATION
        with pytest.raises(BlockingIOError):
            listener.recv(64)


async def test_an_event_loop_still_runs_on_its_stream_socket_pair(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "event_loop")
    assert (outcome.reason, outcome.result) == (Reason.OK, {"answer": 42})


async def test_a_run_sees_nothing_of_the_run_before_it(pool: WorkerPool) -> None:
    marker = unique("card-4111-")
    first = await abuse(pool, "peek", {"reversed": "", "card": marker})
    assert first.reason is Reason.OK
    seen = await abuse(pool, "peek", {"reversed": marker[::-1]})  # in the spare child, warm
    assert (seen.reason, seen.result) == (Reason.OK, {"found": []})


async def test_a_folder_hidden_from_the_worker_ends_the_run_not_the_sandbox(
    pool: WorkerPool,
) -> None:
    outcome = await abuse(pool, "unsearchable")
    if outcome.reason is not Reason.OK:  # as root the worker reads it anyway
        assert outcome.reason is Reason.OUTPUT_LIMIT
        assert outcome.detail == "the work directory could not be measured (Permission denied)"
    after = await abuse(pool, "environment")
    assert after.reason is Reason.OK


async def test_a_daemon_that_would_outlive_the_run_is_killed(pool: WorkerPool) -> None:
    outcome = await abuse(pool, "daemon")
    assert outcome.reason is Reason.OK
    assert outcome.result is not None
    with pytest.raises(ProcessLookupError):
        os.kill(outcome.result["pid"], 0)


async def test_a_symlink_out_of_the_work_dir_leads_nowhere(
    pool: WorkerPool, shared_folder: Path
) -> None:
    outcome = await abuse(pool, "symlink", {"target": str(shared_folder)})
    assert (outcome.reason, outcome.result) == (Reason.OK, {"read": False, "write": False})
    assert contents(shared_folder) == {"canary": SECRET}  # removing the link kept it


async def test_ctypes_system_runs_nothing(pool: WorkerPool, shared_folder: Path) -> None:
    outcome = await abuse(pool, "system", {"command": f"touch {shared_folder}/ran"})
    assert outcome.reason is Reason.OK
    assert outcome.result is not None
    assert outcome.result["status"] != 0
    assert contents(shared_folder) == {"canary": SECRET}
