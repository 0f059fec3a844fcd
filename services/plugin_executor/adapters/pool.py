"""`WorkerPool`, the `Sandbox` adapter: sandboxed workers (`worker.py`), warm or cold.

Warm: `size` workers started once, each running one run at a time (a fresh child per run);
cold: a fresh worker per run, at most `size` at once. Runs wait in a bounded queue for a worker
(`SandboxUnavailable` beyond it). A worker that dies is replaced; the run it had ends `killed`.
Worker `i` works in `<work_dir>/<i>` and, when the service is root, its runs take uid
`uid_base + i`; `worker_uid` starts the workers as that unprivileged uid instead (what a
container does), so the runs share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

import services
from services.plugin_executor.adapters.child import remove_tree
from services.plugin_executor.adapters.probe import require
from services.plugin_executor.adapters.worker_handle import WorkerDied, WorkerHandle
from services.plugin_executor.domain.errors import SandboxUnavailable
from services.plugin_executor.domain.models import Feature, Features, Outcome, Reason, Usage

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from services.plugin_executor.domain.models import Limits, Plugin, Progress

log = logging.getLogger("outrigger.plugin_executor")
START_SECONDS = 30.0  # a worker's start, probe included


def _spec(plugin: Plugin) -> dict[str, str]:
    return {
        "key": f"{plugin.id}#{plugin.id.digest}",
        "folder": os.path.realpath(plugin.folder),
        "module": plugin.module,
        "function": plugin.function,
    }


class WorkerPool:
    def __init__(
        self,
        *,
        work_dir: Path,
        size: int = 2,
        mode: Literal["warm", "cold"] = "warm",
        required: Collection[Feature] = frozenset(),
        uid_base: int = 64000,
        queue_size: int = 64,
        worker_uid: int | None = None,
        disabled: Collection[Feature] = frozenset(),
        grace_seconds: float = 30.0,
    ) -> None:
        self.work_dir = Path(os.path.realpath(work_dir))
        self.size, self.mode, self.queue_size = size, mode, queue_size
        self.required = frozenset(required)
        self.uid_base, self.worker_uid = uid_base, worker_uid
        self.disabled = frozenset(disabled)
        self.grace_seconds = grace_seconds
        self._features = Features(frozenset(), {})
        self._plugins: list[dict[str, str]] = []
        self._generation = 0
        self._live: dict[int, WorkerHandle] = {}  # by index
        self._idle: deque[WorkerHandle] = deque()
        self._waiters: deque[asyncio.Future[WorkerHandle]] = deque()
        self._free = deque(range(size))  # cold: the indexes no worker holds
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = self._closing = False
        self._closed: asyncio.Event | None = None
        # The worker's own imports: the project and orjson, nothing else of the service's path.
        self._path = [
            os.path.dirname(os.path.dirname(os.path.realpath(module.__file__ or "")))
            for module in (services, orjson)
        ]

    # What the service's metrics read.
    @property
    def workers(self) -> int:
        return len(self._live)

    @property
    def busy(self) -> int:
        return sum(1 for worker in self._live.values() if worker.running)

    @property
    def queue_depth(self) -> int:
        return len(self._waiters)

    @property
    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self._live.values()]

    def features(self) -> Features:
        return self._features

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        for index in range(self.size):
            await asyncio.to_thread(self._prepare_dir, index)
        first = await self._spawn(0, probe=True)
        self._live[0] = first
        self._features = first.features
        require(self._features, self.required)
        self._started = True
        if self.mode == "cold":
            del self._live[0]
            await first.stop()
            return
        self._idle.append(first)
        for index in range(1, self.size):
            self._live[index] = await self._spawn(index)
            self._idle.append(self._live[index])

    def load(self, plugins: Sequence[Plugin]) -> None:
        self._plugins = [_spec(plugin) for plugin in plugins]
        self._generation += 1
        if self._started and not self._closing and self.mode == "warm":
            stale = list(self._idle)
            self._idle.clear()
            self._background(self._replace_in_turn(stale))

    async def run(
        self,
        plugin: Plugin,
        payload: dict[str, Any],
        limits: Limits,
        progress: Callable[[Progress], None] | None = None,
    ) -> Outcome:
        spec = _spec(plugin)
        request = {
            "op": "run",
            "plugin": spec,
            "payload": payload,
            "limits": {
                "cpu_seconds": limits.cpu_seconds,
                "memory_mib": limits.memory_mib,
                "wall_seconds": limits.wall_seconds,
                "output_kib": limits.output_kib,
            },
        }
        body = orjson.dumps(request)
        if self.mode == "cold":
            return await self._run_cold(body, spec, progress)
        while True:
            worker = await self._acquire(self._idle)
            try:
                done = worker.submit(body, progress)
            except WorkerDied:
                continue  # it died idle: its replacement is on its way
            return await self._answer(worker, done)

    async def _run_cold(
        self, body: bytes, plugin: dict[str, str], progress: Callable[[Progress], None] | None
    ) -> Outcome:
        index = await self._acquire(self._free)
        try:
            worker = await self._spawn(index, plugins=[plugin])
        except BaseException:
            self._hand_over(index, self._free)
            raise
        self._live[index] = worker
        try:
            return await self._answer(worker, worker.submit(body, progress))
        except WorkerDied:
            return Outcome(Reason.KILLED, Usage(0.0, 0, 0.0), detail="the sandbox worker died")
        finally:
            self._background(self._retire(worker))

    async def _retire(self, worker: WorkerHandle) -> None:
        """Cold: a worker's index is free again once the worker has exited."""
        await worker.stop()
        del self._live[worker.index]
        if worker.process.returncode != 0:
            await asyncio.to_thread(self._prepare_dir, worker.index)
        self._hand_over(worker.index, self._free)

    async def _answer(self, worker: WorkerHandle, done: asyncio.Future[Any]) -> Outcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            frame = await asyncio.shield(done)
        except asyncio.CancelledError:
            worker.cancel()  # it answers `killed`, then takes runs again
            self._background(self._release_after(worker, done))
            raise
        except WorkerDied:
            self._release(worker)
            wall = loop.time() - started
            return Outcome(Reason.KILLED, Usage(0.0, 0, wall), detail="the sandbox worker died")
        self._release(worker)
        if frame["op"] == "fault":
            raise SandboxUnavailable(frame["detail"])
        usage = Usage(frame["cpu_s"], frame["max_rss_kib"], frame["wall_s"])
        return Outcome(Reason(frame["reason"]), usage, frame["result"], frame["detail"])

    async def _release_after(self, worker: WorkerHandle, done: asyncio.Future[Any]) -> None:
        with contextlib.suppress(WorkerDied):
            await done
        self._release(worker)

    async def _acquire(self, free: deque[Any]) -> Any:
        if self._closing or not self._started:
            raise SandboxUnavailable("the sandbox is not running (starting or stopping)")
        if free and not self._waiters:
            return free.popleft()
        if len(self._waiters) >= self.queue_size:
            raise SandboxUnavailable(
                f"all {self.size} sandbox workers are busy and {self.queue_size} runs wait; "
                "retry later"
            )
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._hand_over(waiter.result(), free)
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _hand_over(self, item: Any, free: deque[Any]) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        free.append(item)

    def _release(self, worker: WorkerHandle) -> None:
        if self.mode == "cold":
            return
        if worker.dead or self._live.get(worker.index) is not worker:
            return  # its replacement is on its way (`_lost`)
        if self._closing:
            self._background(worker.stop())
        elif worker.generation != self._generation:
            self._background(self._replace_in_turn([worker]))
        else:
            self._hand_over(worker, self._idle)

    def _lost(self, worker: WorkerHandle) -> None:
        """A worker's pipe closed: it died (or was stopped)."""
        if worker in self._idle:
            self._idle.remove(worker)
        if self.mode == "warm" and self._live.get(worker.index) is worker:
            del self._live[worker.index]
            if not self._closing:
                log.warning(
                    "sandbox worker %d (pid %d) died; replacing it", worker.index, worker.pid
                )
                self._background(self._replace(worker.index))

    async def _replace_in_turn(self, stale: list[WorkerHandle]) -> None:
        for worker in stale:
            if self._live.get(worker.index) is worker:
                del self._live[worker.index]
                await worker.stop()
                await self._replace(worker.index)

    async def _replace(self, index: int) -> None:
        delay = 0.1
        while not self._closing:
            try:
                await asyncio.to_thread(self._prepare_dir, index)
                worker = await self._spawn(index)
            except SandboxUnavailable as exc:
                log.error("%s; trying again in %.1f s", exc, delay)
                if not self._live:  # nothing can take the waiting runs
                    while self._waiters:
                        waiter = self._waiters.popleft()
                        if not waiter.done():
                            waiter.set_exception(SandboxUnavailable(str(exc)))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._closing:
                await worker.stop()
                return
            self._live[index] = worker
            self._hand_over(worker, self._idle)
            return

    def _prepare_dir(self, index: int, *, remove: bool = False) -> None:
        """`<work_dir>/<index>`, emptied of what a dead worker left (runs of its uid killed);
        removed when the pool closes."""
        if not self.work_dir.exists():
            self.work_dir.mkdir(mode=0o711, parents=True)  # passable, not listable
        folder = self.work_dir / str(index)
        if remove and not folder.exists():
            return
        folder.mkdir(mode=0o711, exist_ok=True)
        if os.geteuid() == 0:
            if self.worker_uid is not None:
                os.chown(folder, self.worker_uid, self.worker_uid)
            else:
                _kill_processes_of(self.uid_base + index)
        for leftover in folder.iterdir():
            remove_tree(str(leftover))
        if remove:
            folder.rmdir()

    async def _spawn(
        self, index: int, *, probe: bool = False, plugins: list[dict[str, str]] | None = None
    ) -> WorkerHandle:
        init = {
            "op": "init",
            "work_dir": str(self.work_dir / str(index)),
            "job_uid": self.uid_base + index,
            "worker_uid": self.worker_uid,
            "disabled": sorted(self.disabled),
            "features": None if probe else sorted(self._features.active),
            "plugins": self._plugins if plugins is None else plugins,
        }
        return await WorkerHandle.start(
            index, self._generation, init, self._path, self._lost, START_SECONDS
        )

    def _background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._closed is not None:
            await self._closed.wait()
            return
        self._closed = asyncio.Event()
        self._closing = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(SandboxUnavailable("the sandbox is stopping"))
        running = [w.done for w in self._live.values() if w.done is not None]
        running += [task for task in self._tasks if not task.done()]
        if running:
            await asyncio.wait(running, timeout=self.grace_seconds)
        for worker in list(self._live.values()):
            worker.cancel()
        await asyncio.gather(*(worker.stop() for worker in self._live.values()))
        self._live.clear()
        self._idle.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=START_SECONDS)
        for index in range(self.size):
            await asyncio.to_thread(self._prepare_dir, index, remove=True)
        self._closed.set()


def _kill_processes_of(uid: int) -> None:
    """Every process of a dead worker's run uid (a daemon its last run started). By the real
    uid of `status`: /proc shows a process that changed uid as root's."""
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                text = status.read()
            real = int(text.split(b"\nUid:", 1)[1].split()[0])
            if real == uid:
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
