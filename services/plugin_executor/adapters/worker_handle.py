"""The pool's side of one worker process: starting it, its frames, its current run.

A worker is `python -I -S -c <boot> <project root> <orjson's folder>`: isolated (no
environment, no user site, not the service's path), with only the project and orjson added for
its own imports, which it drops once they are done. One task per worker reads its frames and
routes them to the current run; when the pipe closes the worker is dead, its run ends with
`WorkerDied` and the pool is told (`on_lost`).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
from typing import TYPE_CHECKING, Any

import orjson

from services.plugin_executor.domain.errors import SandboxUnavailable
from services.plugin_executor.domain.models import Feature, Features, Progress

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("outrigger.plugin_executor")
HEADER = struct.Struct(">I")
BOOT = (
    "import sys; sys.path[:0] = sys.argv[1:]; "
    "from services.plugin_executor.adapters.worker import main; main()"
)
CANCEL = orjson.dumps({"op": "cancel"})
STOP_SECONDS = 5.0


class WorkerDied(Exception):
    """The worker's pipe closed before it answered."""


class WorkerHandle:
    def __init__(
        self,
        index: int,
        generation: int,
        process: asyncio.subprocess.Process,
        on_lost: Callable[[WorkerHandle], None],
    ) -> None:
        self.index, self.generation, self.process = index, generation, process
        self.pid = process.pid
        self.features = Features(frozenset(), {})
        self.done: asyncio.Future[dict[str, Any]] | None = None  # the current run's answer
        self.dead = False
        self._progress: Callable[[Progress], None] | None = None
        self._on_lost = on_lost
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(), name=f"sandbox-worker-{index}")

    @classmethod
    async def start(
        cls,
        index: int,
        generation: int,
        init: dict[str, Any],
        path: list[str],
        on_lost: Callable[[WorkerHandle], None],
        within: float,
    ) -> WorkerHandle:
        """A started worker, ready for runs; `SandboxUnavailable` when it cannot start."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-I", "-S", "-c", BOOT, *path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={},
            cwd="/",
            start_new_session=True,  # the service's terminal signals never reach it directly
        )
        worker = cls(index, generation, process, on_lost)
        worker._write(orjson.dumps(init))
        try:
            ready = await asyncio.wait_for(asyncio.shield(worker._ready), within)
        except (TimeoutError, WorkerDied):
            await worker.stop()
            raise SandboxUnavailable(f"sandbox worker {index} did not start") from None
        if ready["op"] != "ready":
            await worker.stop()
            raise SandboxUnavailable(f"sandbox worker {index} could not start: {ready['detail']}")
        active = frozenset(Feature(name) for name in ready["active"])
        worker.features = Features(active, {Feature(k): v for k, v in ready["detail"].items()})
        return worker

    @property
    def running(self) -> bool:
        return self.done is not None and not self.done.done()

    def submit(
        self, body: bytes, progress: Callable[[Progress], None] | None
    ) -> asyncio.Future[dict[str, Any]]:
        """Sends a run; the future is its `done` (or `fault`) frame, or fails with
        `WorkerDied`."""
        if self.dead:
            raise WorkerDied
        self.done = asyncio.get_running_loop().create_future()
        self._progress = progress
        self._write(body)
        return self.done

    def cancel(self) -> None:
        """Ends the current run (`killed`); nothing when there is none."""
        if self.running and not self.dead:
            self._write(CANCEL)

    def _write(self, body: bytes) -> None:
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(HEADER.pack(len(body)) + body)

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                size = HEADER.unpack(await stdout.readexactly(HEADER.size))[0]
                frame = orjson.loads(await stdout.readexactly(size))
                op = frame["op"]
                if op == "progress":
                    self._report(Progress(frame["progress"], frame["message"]))
                elif op in ("ready", "failed"):
                    if not self._ready.done():
                        self._ready.set_result(frame)
                elif self.done is not None and not self.done.done():
                    self.done.set_result(frame)
        except (asyncio.IncompleteReadError, ConnectionError, orjson.JSONDecodeError, KeyError):
            pass
        finally:
            self.dead = True
            for future in (self._ready, self.done):
                if future is not None and not future.done():
                    future.set_exception(WorkerDied())
                    future.exception()  # retrieved here: whoever waits still gets it
            self._on_lost(self)

    def _report(self, progress: Progress) -> None:
        if self._progress is not None:
            try:
                self._progress(progress)
            except Exception:
                log.exception("a progress callback failed")

    async def stop(self) -> None:
        """Closes its stdin (it ends its run, `killed`, and exits); kills it if it lingers."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self._reader
