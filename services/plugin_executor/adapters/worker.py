"""A sandbox worker: a clean interpreter (`python -I -S`) that forks one confined child per run.

It talks to the pool over its stdin/stdout with length-prefixed orjson frames. The first frame
(`init`) says who it is; it pre-imports the stdlib modules the plugins name and compiles their
entry modules (no plugin code runs here, not even at import: that happens in the confined
child), opens what the child will need, gives up what it may (the worker's uid, an empty network
namespace), probes the host and answers `ready`. Then, per `run`: a child with a private work
dir, forked and confined (`child.py`); the worker sends it the input, and the child runs the
plugin and writes tagged lines on fd 3; the worker watches the child, its pipes, the wall clock
(from the input on) and its stdin (`cancel`) in one poll, kills the process group at a limit,
reaps it with its rusage, kills what the run left (it is the subreaper of every process the run
started, so a double-forked daemon comes back to it), removes the work dir and answers `done`
(`endings.py`), or `fault` (`SandboxUnavailable`).

A warm worker then forks the next run's child at once, confined for the plugin and limits of
the run just done, and leaves it waiting for its input: the fork and the confinement are paid
between runs, not in the next run's time. A run of another plugin or other limits drops that
spare (it never ran plugin code) and forks its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import select
import signal
import stat
import struct
import sys
import time
from typing import Any

import orjson

from services.plugin_executor.adapters.child import Child, Entry, remove_tree
from services.plugin_executor.adapters.confinement import (
    Confinement,
    enter_network_namespace,
    open_readable,
    set_dumpable,
)
from services.plugin_executor.adapters.endings import Lines, ending
from services.plugin_executor.adapters.probe import DISABLED, layers, probe
from services.plugin_executor.domain.models import Feature, Features, Reason

PR_SET_CHILD_SUBREAPER = 36
HEADER = struct.Struct(">I")
SHARED = ("/tmp", "/var/tmp", "/dev/shm")
DISK_CHECK_SECONDS = 0.1  # how often a run's work dir is measured (a trivial run never is)
MAX_ENTRIES = 10_000  # files and folders a run may leave in its work dir at once


def read_frame(fd: int) -> dict[str, Any] | None:
    """The next frame from the pool, or None at the end of its pipe."""
    header = _read_exact(fd, HEADER.size)
    body = None if header is None else _read_exact(fd, HEADER.unpack(header)[0])
    frame: dict[str, Any] | None = None if body is None else orjson.loads(body)
    return frame


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = os.read(fd, missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, message: dict[str, Any]) -> None:
    body = orjson.dumps(message)
    view = memoryview(HEADER.pack(len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


class Worker:
    def __init__(self, init: dict[str, Any], pool_in: int, pool_out: int) -> None:
        self.pool_in, self.pool_out = pool_in, pool_out
        self.work_dir: str = init["work_dir"]
        self.disk_budget: int = init["disk_bytes"]
        self.entries: dict[str, Entry] = {}
        for spec in init["plugins"]:
            self.entry(spec)
        readable = open_readable()
        root = os.geteuid() == 0
        if init["worker_uid"] is not None:  # play (or be) a container's unprivileged user
            uid = init["worker_uid"]
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            root = False
        if not os.access(self.work_dir, os.W_OK | os.X_OK):
            raise PermissionError(f"uid {os.getuid()} cannot write its work dir {self.work_dir}")
        disabled = {Feature(name) for name in init["disabled"]}
        network: str | None = DISABLED
        if Feature.NETWORK_NAMESPACE not in disabled:
            set_dumpable(True)
            network = enter_network_namespace()
        set_dumpable(False)
        job_uid = init["job_uid"] if root else None
        if init["features"] is None:
            self.features = probe(
                job_uid=job_uid,
                network=network,
                work_dir=self.work_dir,
                readable=readable,
                disabled=disabled,
            )
        else:  # the pool probed with its first worker: this one applies what that one found
            found = {Feature(name) for name in init["features"]}
            if network is not None:
                found.discard(Feature.NETWORK_NAMESPACE)
            self.features = Features(frozenset(found))
        applied = layers(self.features, job_uid=job_uid, readable=readable)
        self.job_uid = applied.job_uid
        # Without Landlock a run can write the shared temporary folders: with a uid of its
        # own, what it left there is found by owner and removed after it.
        self.shared = SHARED if self.job_uid is not None and not applied.landlock_abi else ()
        self.confinement = Confinement(applied)
        self.runs = 0
        self.stopping = False
        self.spares: bool = init["spares"]  # warm: keep a child ready for the next run
        self.spare: Child | None = None
        self.children = f"/proc/{os.getpid()}/task/{os.getpid()}/children"  # one thread
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def report(self, frame: dict[str, Any]) -> None:
        write_frame(self.pool_out, frame)

    def entry(self, spec: dict[str, str]) -> Entry:
        entry = self.entries.get(spec["key"])
        if entry is None:
            entry = self.entries[spec["key"]] = Entry.prepare(spec)
        return entry

    def serve(self) -> None:
        gc.freeze()  # what every child shares stays shared
        try:
            while not self.stopping:
                message = read_frame(self.pool_in)
                if message is None:
                    return
                if message["op"] == "run":
                    write_frame(self.pool_out, self.execute(message))
                    spec, limits = message["plugin"], message["limits"]
                    del message  # the spare's stack runs through this frame: no input in it
                    if self.spares and not self.stopping:
                        with contextlib.suppress(OSError):  # the next run forks its own
                            self.spare = self.fork(spec, limits)
                            self.report({"op": "spare", "pid": self.spare.pid})
        finally:
            if self.spare is not None:
                self.spare.drop()

    def fork(self, spec: dict[str, str], limits: dict[str, Any]) -> Child:
        self.runs += 1
        run_dir = os.path.join(self.work_dir, f"run-{os.getpid()}-{self.runs}")
        entry = self.entry(spec)
        return Child.fork(self.confinement, entry, spec["key"], limits, run_dir, self.job_uid)

    def execute(self, message: dict[str, Any]) -> dict[str, Any]:
        spec, limits = message["plugin"], message["limits"]
        child, self.spare = self.spare, None
        if child is not None and (child.plugin != spec["key"] or child.limits != limits):
            child.drop()
            child = None
        try:
            if child is None:
                child = self.fork(spec, limits)
            started = time.monotonic()
            child.send(orjson.dumps(message["payload"]))
            lines, output = child.lines.fileno(), child.output
            return self.supervise(child.pid, started, limits, lines, output, child.run_dir)
        except OSError as exc:
            detail = f"the sandbox could not run a plugin: {exc}"
            if child is not None:
                child.end()
                self.sweep(child.pid)
                detail = self.scrub(detail, child.run_dir) or detail
            return {"op": "fault", "detail": detail}
        finally:
            if child is not None:
                child.close()

    def supervise(
        self,
        pid: int,
        started: float,
        limits: dict[str, Any],
        result_r: int,
        output_r: int,
        run_dir: str,
    ) -> dict[str, Any]:
        pidfd = os.pidfd_open(pid)
        try:
            poller = select.poll()
            for fd in (pidfd, result_r, output_r, self.pool_in):
                poller.register(fd, select.POLLIN)
            deadline = started + limits["wall_seconds"]
            budget = limits["output_kib"] << 10
            lines = Lines(self.report)
            killed: Reason | None = None
            filled: str | None = None  # how the run overfilled its work dir
            exited = False
            measure_at = started + DISK_CHECK_SECONDS
            while not exited and killed is None:
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    killed = Reason.TIMEOUT
                    break
                if now >= measure_at:
                    measure_at = now + DISK_CHECK_SECONDS
                    if filled := self.overfilled(run_dir):
                        killed = Reason.OUTPUT_LIMIT
                        break
                wait = min(remaining, measure_at - now)
                for fd, _ in poller.poll(max(1, int(wait * 1000 + 1))):
                    if fd == pidfd:
                        exited = True
                    elif fd == self.pool_in:
                        killed = Reason.KILLED
                        if (read_frame(fd) or {}).get("op") != "cancel":
                            self.stopping = True  # the pool is gone: end the run, then stop
                        poller.unregister(fd)
                    else:
                        lines.read(fd, fd == result_r, poller)
                    if lines.size > budget:
                        killed = Reason.OUTPUT_LIMIT
        finally:
            os.close(pidfd)
        if killed is not None:
            _kill(pid)
        _, status, usage = os.wait4(pid, 0)
        wall = time.monotonic() - started
        left_cpu, left_rss = self.sweep(pid)  # now nothing of the run writes to the pipes
        if killed is None:
            for fd in lines.open_of(result_r, output_r):
                os.set_blocking(fd, False)
                while lines.read(fd, fd == result_r, None):
                    pass
            if lines.size > budget:
                killed = Reason.OUTPUT_LIMIT
        cpu = usage.ru_utime + usage.ru_stime + left_cpu
        rss = max(usage.ru_maxrss, left_rss)
        outcome = ending(lines, killed, status, cpu, rss, limits, budget)
        outcome["detail"] = filled or self.scrub(outcome["detail"], run_dir)
        return {"op": "done", **outcome, "cpu_s": cpu, "max_rss_kib": rss, "wall_s": wall}

    def overfilled(self, run_dir: str) -> str | None:
        """Why the run's work dir holds too much (more than the disk budget, or more than
        `MAX_ENTRIES` files and folders), or None. Sizes are what the disk holds (a sparse file
        counts what it uses); symlinks are never followed. What cannot be measured (a folder
        the run made unreadable to the worker's uid) counts as too much: nothing of the worker
        acts on a path the run can still change (no chmod while it runs)."""
        used, entries, folders = 0, 0, [run_dir]
        try:
            while folders:
                folder = folders.pop()
                try:
                    listing = list(os.scandir(folder))
                except FileNotFoundError:
                    continue
                for entry in listing:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    used += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        folders.append(entry.path)
                if used > self.disk_budget:
                    return f"the work directory went past {self.disk_budget >> 20} MiB"
                if entries > MAX_ENTRIES:
                    return f"the work directory went past {MAX_ENTRIES} files and folders"
        except OSError as exc:
            return f"the work directory could not be measured ({exc.strerror})"
        return None

    def sweep(self, pgid: int) -> tuple[float, int]:
        """Kills and reaps every process the run left (its group, then whatever came back to
        this subreaper); their cpu and peak memory count for the run."""
        _kill(-pgid)
        cpu, rss = 0.0, 0
        while True:
            fd = os.open(self.children, os.O_RDONLY)
            try:
                pids = [int(pid) for pid in os.read(fd, 1 << 16).split()]
            finally:
                os.close(fd)
            if not pids:
                break
            for pid in pids:
                _kill(pid)
            for pid in pids:
                _, _, usage = os.wait4(pid, 0)
                cpu += usage.ru_utime + usage.ru_stime
                rss = max(rss, usage.ru_maxrss)
        for folder in self.shared:
            with os.scandir(folder) as entries:
                left = [e for e in entries if e.stat(follow_symlinks=False).st_uid == self.job_uid]
            for entry in left:
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(entry.path)
                else:
                    os.unlink(entry.path)
        return cpu, rss

    def scrub(self, detail: str | None, run_dir: str) -> str | None:
        if detail is None:
            return None
        for path, name in ((run_dir, "."), (self.work_dir, "<work>"), (sys.base_prefix, "<py>")):
            detail = detail.replace(path, name)
        for entry in self.entries.values():
            detail = detail.replace(entry.folder, "<plugin>")
        return detail


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main() -> None:
    """The worker's entry point (`python -I -S -c …`, the project on its path)."""
    pool_in, pool_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a stray print goes to the log, never into the frames
    os.close(devnull)
    sys.dont_write_bytecode = True
    prefix = sys.base_prefix
    sys.path[:] = [p for p in sys.path if p == prefix or p.startswith(prefix + os.sep)]
    try:
        init = read_frame(pool_in)
        if init is None:
            return
        try:
            worker = Worker(init, pool_in, pool_out)
        except Exception as exc:
            write_frame(pool_out, {"op": "failed", "detail": f"{type(exc).__name__}: {exc}"})
            return
        features: Features = worker.features
        detail = {str(k): v for k, v in features.detail.items()}
        write_frame(pool_out, {"op": "ready", "active": sorted(features.active), "detail": detail})
        worker.serve()
    except BrokenPipeError:
        pass  # the pool is gone


if __name__ == "__main__":
    main()
