"""The pool's side of one worker process: starting it, its frames, its current run; and its
slot (its folder, its runs' uid), cleared after it.

A worker is `python -s -P -S -c <boot> <project root> <orjson's folder>`: isolated (no
environment but what it is given, no user site, not the service's path), with only the project
and orjson added for its own imports, which it drops once they are done. With `scrub`, it is
given `SCRUBBING`: Python's allocators fill what they free with 0xDD (the debug hooks of
pymalloc) and so does glibc's free() (its perturb tunable), so the memory a run's process
inherits holds nothing of an earlier run's input or result, at a cost to allocation-heavy
plugin code (~40 % measured on a loop of small dicts and strings).

One task per worker reads its frames and routes them to the current run; when the pipe closes
the worker is dead, its run ends with `WorkerDied` and the pool is told (`on_lost`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import struct
import sys
from typing import TYPE_CHECKING, Any

import orjson

import services
from services.plugin_executor.adapters.child import remove_tree
from services.plugin_executor.domain.errors import SandboxUnavailable
from services.plugin_executor.domain.models import Feature, Features, Progress

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from services.plugin_executor.domain.models import Plugin

log = logging.getLogger("outrigger.plugin_executor")
SCRUBBING = {"PYTHONMALLOC": "pymalloc_debug", "GLIBC_TUNABLES": "glibc.malloc.perturb=221"}
HEADER = struct.Struct(">I")
BOOT = (
    "import sys; sys.path[:0] = sys.argv[1:]; "
    "from services.plugin_executor.adapters.worker import main; main()"
)
CANCEL = orjson.dumps({"op": "cancel"})
STOP_SECONDS = 5.0


@functools.cache
def _boot_path() -> list[str]:
    """The worker's own imports: the project and orjson, nothing else of the service's path."""
    return [
        os.path.dirname(os.path.dirname(os.path.realpath(module.__file__ or "")))
        for module in (services, orjson)
    ]


def plugin_spec(plugin: Plugin) -> dict[str, str]:
    """A plugin as a worker knows it: where its code is, and a key for what it prepared."""
    return {
        "key": f"{plugin.id}#{plugin.id.digest}",
        "folder": os.path.realpath(plugin.folder),
        "module": plugin.module,
        "function": plugin.function,
    }


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
        self.spare: int | None = None  # the pid of the child it keeps ready for its next run
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
        on_lost: Callable[[WorkerHandle], None],
        within: float,
        *,
        scrub: bool = True,
    ) -> WorkerHandle:
        """A started worker, ready for runs; `SandboxUnavailable` when it cannot start."""
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-s", "-P", "-S", "-c", BOOT, *_boot_path()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=dict(SCRUBBING) if scrub else {},
                cwd="/",
                start_new_session=True,  # the service's terminal signals never reach it
            )
        except OSError as exc:
            raise SandboxUnavailable(f"sandbox worker {index} could not start: {exc}") from None
        worker = cls(index, generation, process, on_lost)
        worker._write(orjson.dumps(init))
        try:
            ready = await asyncio.wait_for(asyncio.shield(worker._ready), within)
        except (TimeoutError, WorkerDied):
            await worker.stop()
            raise SandboxUnavailable(f"sandbox worker {index} did not start") from None
        except BaseException:  # cancelled: no worker is left behind
            await worker.stop()
            raise
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
        `WorkerDied` (at once if the worker is dead already)."""
        self.done = asyncio.get_running_loop().create_future()
        self._progress = progress
        if self.dead:
            self.done.set_exception(WorkerDied())
        else:
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
                elif op == "spare":
                    self.spare = frame["pid"]
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


def clear_slot(
    work_dir: Path, index: int, owner: int | None, run_uid: int | None, *, remove: bool = False
) -> None:
    """Worker `index`'s folder, `<work_dir>/<index>` (made, given to `owner` when the pool is
    root), emptied of what a dead worker left; the processes of its runs' uid (`run_uid`: a
    daemon its last run started) killed. `remove`: the pool is closing; the folder goes too."""
    if not work_dir.exists():
        work_dir.mkdir(mode=0o711, parents=True)  # passable, not listable
    folder = work_dir / str(index)
    if remove and not folder.exists():
        return
    folder.mkdir(mode=0o711, exist_ok=True)
    if os.geteuid() == 0 and owner is not None:
        os.chown(folder, owner, owner)
    if os.geteuid() == 0 and run_uid is not None:
        _kill_processes_of(run_uid)
    for leftover in folder.iterdir():
        remove_tree(str(leftover))
    if remove:
        folder.rmdir()


def _kill_processes_of(uid: int) -> None:
    """By the real uid of `status`: /proc shows a process that changed uid as root's."""
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                text = status.read()
            if int(text.split(b"\nUid:", 1)[1].split()[0]) == uid:
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
