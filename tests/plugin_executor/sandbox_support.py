"""What the sandbox's tests share: `Plugin`s of the test plugin folders (`plugins/<name>/main.py`,
one function per behaviour), a private work root, uids of their own, and the checks that a run
left nothing behind on the host.

Pools of one test process take uids no other pool of the run takes (xdist workers included), so
one pool's sweep never kills another's runs.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.plugin_executor.adapters.pool import WorkerPool
from services.plugin_executor.domain.models import Feature, Limits, Plugin, PluginId

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

PLUGINS = Path(__file__).parent / "plugins"
UIDS_PER_POOL = 8
_pools = itertools.count()


def plugin(folder: str, function: str, **limits: Any) -> Plugin:
    """The plugin `folder`'s `function`, under generous limits but those given."""
    bounds = {"cpu_seconds": 5.0, "memory_mib": 256, "wall_seconds": 10.0, "output_kib": 1024}
    bounds.update(limits)
    return Plugin(
        id=PluginId(f"{folder}-{function}".replace("_", "-"), "1.0.0", "0" * 64),
        folder=PLUGINS / folder,
        module="main",
        function=function,
        description=f"the {folder} plugin's {function}",
        input_schema={"type": "object"},
        output_schema={"type": "object"},
        limits=Limits(**bounds),
    )


def plugins_of(folder: str) -> list[Plugin]:
    """A plugin for each function of the folder's module."""
    source = (PLUGINS / folder / "main.py").read_text()
    names = [line[4:].split("(")[0] for line in source.splitlines() if line.startswith("def ")]
    return [plugin(folder, name) for name in names]


def uid_base() -> int:
    """The first of `UIDS_PER_POOL` uids no other pool of this test run uses."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    return 61000 + worker * 1000 + (next(_pools) % (1000 // UIDS_PER_POOL)) * UIDS_PER_POOL


@dataclass(frozen=True)
class Level:
    """An isolation level: root (runs under uids of their own, the workers in a network
    namespace), unprivileged (workers started as one plain uid: the runs share it; a user and
    network namespace where the kernel lets a plain uid have one), container (the same without
    namespaces, as Docker's default profile allows)."""

    name: str
    unprivileged: bool
    disabled: frozenset[Feature] = frozenset()

    def options(self, base: int) -> dict[str, Any]:
        worker_uid = base + UIDS_PER_POOL - 1 if self.unprivileged else None
        return {"uid_base": base, "worker_uid": worker_uid, "disabled": self.disabled}


LEVELS = [
    Level("root", unprivileged=False),
    Level("unprivileged", unprivileged=True),
    Level("container", unprivileged=True, disabled=frozenset({Feature.NETWORK_NAMESPACE})),
]


@contextmanager
def work_root() -> Iterator[Path]:
    """A work root any uid can pass through (tmp_path is root's own, 0700); afterwards it must
    hold nothing but what the pools made of it: no run's files."""
    root = Path(tempfile.mkdtemp(prefix="outrigger-sandbox-"))
    root.chmod(0o711)
    try:
        yield root
        left = [str(path.relative_to(root)) for path in root.rglob("*") if not path.is_dir()]
        left += [str(p.relative_to(root)) for p in root.glob("*/*/*")]
        assert not left, f"runs left {left} in the work root"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_uids(pool: WorkerPool) -> set[int]:
    if pool.worker_uid is not None:
        return {pool.worker_uid}
    return {pool.uid_base + index for index in range(pool.size)}


def _real_uid(pid: str) -> int | None:
    """The process's real uid, None when it is gone or a zombie (it runs nothing)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
    except OSError:
        return None
    return None if fields["State"].strip().startswith("Z") else int(fields["Uid"].split()[0])


async def run_processes(pool: WorkerPool, within: float = 2.0) -> list[int]:
    """Processes of the pool's run uids that are neither its workers nor the children they keep
    ready for their next runs: what runs left. A warm worker announces its spare just after it
    answered a run, and a spare dies a moment after its worker: `within` seconds are given for
    that."""
    uids = run_uids(pool)
    deadline = time.monotonic() + within
    while True:
        known = set(pool.worker_pids) | set(pool.spare_pids)
        left = [
            int(pid)
            for pid in os.listdir("/proc")
            if pid.isdigit() and int(pid) not in known and _real_uid(pid) in uids
        ]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.01)  # the workers' frames come in meanwhile


def files_of(uids: set[int]) -> list[str]:
    """Files of these uids in the shared temporary folders."""
    found = []
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        for entry in os.scandir(folder):
            if entry.stat(follow_symlinks=False).st_uid in uids:
                found.append(entry.path)
    return found


def on_host(name: str) -> dict[str, bool]:
    """Whether /tmp and /dev/shm hold a file of that name."""
    return {folder: os.path.exists(os.path.join(folder, name)) for folder in ("/tmp", "/dev/shm")}


def contents(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


@asynccontextmanager
async def started(
    root: Path, plugins: Sequence[Plugin] = (), **options: Any
) -> AsyncIterator[WorkerPool]:
    """A started pool of uids of its own, its workers prepared for `plugins` (as the service
    loads its plugins before it starts the sandbox); closed afterwards, and then nothing of its
    runs may be left: no process, no file in /tmp or /dev/shm."""
    options.setdefault("uid_base", uid_base())
    pool = WorkerPool(work_dir=root / f"pool-{options['uid_base']}", **options)
    pool.load(plugins)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()
        assert await run_processes(pool) == []
        assert files_of(run_uids(pool)) == []
