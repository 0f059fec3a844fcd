"""`WorkerPool`, the `Sandbox` adapter: sandboxed workers (`worker.py`), warm or cold.

Warm: `size` workers started once, each running one run at a time (a fresh child per run);
cold: a fresh worker per run, at most `size` at once. Runs wait in a bounded queue for a worker
(`SandboxUnavailable` beyond it). A worker that dies is replaced; the run it had ends `killed`.
Worker `i` works in `<work_dir>/<i>` and, when the service is root, its runs take uid
`uid_base + i`; `worker_uid` starts the workers as that unprivileged uid instead (what a
container does), so the runs share it. `close` lets runs end within their wall-clock limit, or
within `grace_seconds` when it is set (then kills them).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from services.plugin_executor.adapters.probe import require
from services.plugin_executor.adapters.worker_handle import (
    WorkerDied,
    WorkerHandle,
    clear_slot,
    plugin_spec,
)
from services.plugin_executor.domain.errors import SandboxUnavailable
from services.plugin_executor.domain.models import Feature, Features, Outcome, Reason, Usage
from services.plugin_executor.metrics import POOL_BUSY, POOL_WORKERS, QUEUE_DEPTH

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine, Sequence

    from services.plugin_executor.domain.models import Limits, Plugin, PluginId, Progress

log = logging.getLogger("outrigger.plugin_executor")
START_SECONDS = 30.0  # a worker's start, probe included


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
        disk_mib: int = 256,
        scrub_memory: bool = True,
        worker_uid: int | None = None,
        disabled: Collection[Feature] = frozenset(),
        grace_seconds: float | None = None,
    ) -> None:
        self.work_dir = Path(os.path.realpath(work_dir))
        self.size, self.mode, self.queue_size = size, mode, queue_size
        self.disk_mib = disk_mib
        self.scrub_memory = scrub_memory
        self.required = frozenset(required)
        self.uid_base, self.worker_uid = uid_base, worker_uid
        self.disabled = frozenset(disabled)
        self.grace_seconds = grace_seconds
        self._features = Features(frozenset(), {})
        self._plugins: list[dict[str, str]] = []
        self._specs: dict[tuple[PluginId, Path], dict[str, str]] = {}  # the loaded plugins'
        self._generation = 0
        self._live: dict[int, WorkerHandle] = {}  # by index
        self._idle: deque[WorkerHandle] = deque()
        self._waiters: deque[asyncio.Future[Any]] = deque()  # a worker, or a cold index
        self._free = deque(range(size))  # cold: the indexes no worker holds
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = self._closing = False
        self._closed: asyncio.Event | None = None

    # For the service's gauges (and the tests): the live workers' pids, how many are busy, how
    # many runs wait.
    @property
    def busy(self) -> int:
        return sum(1 for worker in self._live.values() if worker.running)

    @property
    def queue_depth(self) -> int:
        return len(self._waiters)

    @property
    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self._live.values()]

    @property
    def spare_pids(self) -> list[int]:
        """The children the warm workers keep ready for their next runs (no plugin code ran in
        them yet); a pid stays here after its child took a run."""
        return [worker.spare for worker in self._live.values() if worker.spare is not None]

    def features(self) -> Features:
        return self._features

    async def start(self) -> None:
        try:
            for index in range(self.size):
                await asyncio.to_thread(self._prepare_dir, index)
            self._live[0] = first = await self._spawn(0, probe=True)  # the one that probes
            self._features = first.features
            require(self._features, self.required)
            if self.mode == "cold":
                del self._live[0]
                await first.stop()
            for index in range(1, self.size if self.mode == "warm" else 0):
                self._live[index] = await self._spawn(index)
        except BaseException:
            await self.close()
            raise
        self._idle.extend(self._live.values())
        self._started = True
        QUEUE_DEPTH.set_function(lambda: self.queue_depth)
        POOL_WORKERS.set_function(lambda: len(self._live))
        POOL_BUSY.set_function(lambda: self.busy)

    def load(self, plugins: Sequence[Plugin]) -> None:
        self._specs = {(plugin.id, plugin.folder): plugin_spec(plugin) for plugin in plugins}
        self._plugins = list(self._specs.values())
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
        spec = self._specs.get((plugin.id, plugin.folder)) or plugin_spec(plugin)
        # orjson writes the dataclass's fields itself (no dataclasses.asdict copy per run)
        body = orjson.dumps({"op": "run", "plugin": spec, "payload": payload, "limits": limits})
        if self.mode == "cold":
            return await self._run_cold(body, spec, progress)
        while (worker := await self._acquire(self._idle)).dead:
            pass  # it died idle: its replacement is on its way
        return await self._answer(worker, worker.submit(body, progress))

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
        if self._closing:  # it closed while this worker started
            self._background(self._retire(worker))
            raise SandboxUnavailable("the sandbox is stopping")
        try:
            return await self._answer(worker, worker.submit(body, progress))
        finally:
            self._background(self._retire(worker))

    async def _retire(self, worker: WorkerHandle) -> None:
        """Cold: a worker's index is free again once the worker has exited."""
        await worker.stop()
        self._live.pop(worker.index, None)
        if worker.process.returncode != 0:
            await asyncio.to_thread(self._prepare_dir, worker.index)
        self._hand_over(worker.index, self._free)

    async def _answer(self, worker: WorkerHandle, done: asyncio.Future[Any]) -> Outcome:
        try:
            frame = await asyncio.shield(done)
        except asyncio.CancelledError:
            worker.cancel()  # it answers `killed`, then takes runs again
            done.add_done_callback(lambda _: self._release(worker))
            raise
        except WorkerDied:
            self._release(worker)
            return Outcome(Reason.KILLED, Usage(0.0, 0, 0.0), detail="the sandbox worker died")
        self._release(worker)
        if frame["op"] == "fault":
            raise SandboxUnavailable(frame["detail"])
        usage = Usage(frame["cpu_s"], frame["max_rss_kib"], frame["wall_s"])
        return Outcome(Reason(frame["reason"]), usage, frame["result"], frame["detail"])

    async def _acquire(self, free: deque[Any]) -> Any:
        if self._closing or not self._started:
            raise SandboxUnavailable("the sandbox is not running (starting or stopping)")
        if free and not self._waiters:
            return free.popleft()
        if len(self._waiters) >= self.queue_size:
            busy = f"all {self.size} sandbox workers are busy and {self.queue_size} runs wait"
            raise SandboxUnavailable(f"{busy}; retry later")
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

    def _fail_waiters(self, detail: str) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(SandboxUnavailable(detail))

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
                log.warning("worker %d (pid %d) died; replacing it", worker.index, worker.pid)
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
                    self._fail_waiters(str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._closing:
                await worker.stop()
            else:
                self._live[index] = worker
                self._hand_over(worker, self._idle)
            return

    def _prepare_dir(self, index: int, *, remove: bool = False) -> None:
        run_uid = self.uid_base + index if self.worker_uid is None else None  # a uid of its own
        clear_slot(self.work_dir, index, self.worker_uid, run_uid, remove=remove)

    async def _spawn(
        self, index: int, *, probe: bool = False, plugins: list[dict[str, str]] | None = None
    ) -> WorkerHandle:
        init = {
            "op": "init",
            "work_dir": str(self.work_dir / str(index)),
            "disk_bytes": self.disk_mib << 20,
            "job_uid": self.uid_base + index,
            "worker_uid": self.worker_uid,
            "disabled": sorted(self.disabled),
            "features": None if probe else sorted(self._features.active),
            "plugins": self._plugins if plugins is None else plugins,
            "spares": self.mode == "warm",  # a cold worker runs once
        }
        # a cold worker runs once: its memory never held another run's data
        scrub = self.scrub_memory and self.mode == "warm"
        return await WorkerHandle.start(
            index, self._generation, init, self._lost, START_SECONDS, scrub=scrub
        )

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._closed is not None:
            await self._closed.wait()
            return
        self._closed = asyncio.Event()
        self._closing = True
        self._fail_waiters("the sandbox is stopping")
        running = [w.done for w in self._live.values() if w.done is not None]
        if running := running + [task for task in self._tasks if not task.done()]:
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
