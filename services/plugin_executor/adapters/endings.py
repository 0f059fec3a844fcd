"""How the worker reads a run: its lines as they come (progress passed on at once, the first
final line kept, every byte counted against the output budget), then its ending: the reason,
the result and a detail, from that line, how the worker stopped it and how its process ended.

`sandbox_violation` is a run that died of SIGSYS (seccomp's kill), or whose plugin let through
an OSError whose errno is EPERM or EACCES: what seccomp, Landlock and the file permissions
answer to a denied operation. An exception without that errno (one the plugin raised itself)
is the plugin's `error`; EFBIG (a file past the file-size limit) is `output_limit`.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import TYPE_CHECKING, Any

import orjson

from services.plugin_executor.domain.models import Reason

if TYPE_CHECKING:
    import select
    from collections.abc import Callable

CHUNK = 1 << 16
VIOLATIONS = frozenset({errno.EPERM, errno.EACCES})


class Lines:
    """The run's pipes, read as they fill."""

    def __init__(self, report: Callable[[dict[str, Any]], None]) -> None:
        self.report = report  # sends a frame to the pool
        self.size = 0
        self.final: bytes | None = None  # the first final line
        self.confined = False  # the child said so before the plugin's code ran
        self._pending = bytearray()
        self._ended: set[int] = set()

    def open_of(self, *fds: int) -> list[int]:
        """Those of `fds` whose end was not read yet."""
        return [fd for fd in fds if fd not in self._ended]

    def read(self, fd: int, results: bool, poller: select.poll | None) -> bool:
        """Reads what `fd` has (`results`: the result pipe); False when it had nothing (and
        then, at its end, takes it off `poller`)."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return False
        if not data:
            self._ended.add(fd)
            if poller is not None:
                poller.unregister(fd)
            return False
        self.size += len(data)
        if results and self.final is None:
            self._pending += data
            if b"\n" in data:  # a line is complete: split only then (a result is one line)
                *complete, rest = self._pending.split(b"\n")
                self._pending = rest
                for line in complete:
                    if line[:1] == b"p":
                        self._progress(bytes(line[1:]))
                    elif line == b"c":
                        self.confined = True
                    elif self.final is None and line:
                        self.final = bytes(line)
        return True

    def _progress(self, body: bytes) -> None:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if type(value) is dict and type(value.get("progress")) in (int, float):
            message = value.get("message")
            message = message if type(message) is str else None
            self.report({"op": "progress", "progress": value["progress"], "message": message})


def ending(
    lines: Lines,
    killed: Reason | None,
    status: int,
    cpu: float,
    rss_kib: int,
    limits: dict[str, Any],
    budget: int,
) -> dict[str, Any]:
    """The run's reason, result and detail from what the worker saw; `op: fault` when the child
    could not confine itself (before any plugin code ran: after, the line is the plugin's)."""
    if killed is Reason.TIMEOUT:
        return _end(killed, f"the wall-clock limit of {limits['wall_seconds']:g} s was reached")
    if killed is Reason.OUTPUT_LIMIT:
        return _end(killed, f"the output went past {budget >> 10} KiB and was cut")
    if killed is Reason.KILLED:
        return _end(killed, "the run was stopped (the sandbox is closing or was cancelled)")
    final = lines.final
    tag, body = (final[:1], final[1:]) if final else (b"", b"")
    try:
        value = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        tag, value = b"", None
    if tag == b"r":
        if type(value) is dict:
            return {"reason": Reason.OK, "result": value, "detail": None}
        return _end(Reason.INVALID_OUTPUT, "the result is not a JSON object")
    if tag == b"e" and type(value) is dict:
        return _exception(value)
    memory = limits["memory_mib"]
    if tag == b"m":
        return _end(Reason.MEMORY_LIMIT, f"the plugin ran out of its {memory} MiB")
    if tag == b"i":
        return _end(Reason.INVALID_OUTPUT, str(value))
    if tag == b"f" and not lines.confined:
        return {"op": "fault", "detail": f"the sandbox could not confine a run: {value}"}
    return _death(status, cpu, rss_kib, limits)


def _exception(value: dict[str, Any]) -> dict[str, Any]:
    text = f"{value.get('type')}: {value.get('message')}"
    code = value.get("errno")
    if code in VIOLATIONS:
        return _end(Reason.SANDBOX_VIOLATION, f"denied by the sandbox: {text}")
    if code == errno.EFBIG:
        return _end(Reason.OUTPUT_LIMIT, f"a file went past the work dir's file-size limit: {text}")
    return _end(Reason.ERROR, text)


def _death(status: int, cpu: float, rss_kib: int, limits: dict[str, Any]) -> dict[str, Any]:
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return _end(Reason.ERROR, f"the plugin's process exited (status {code}) without a result")
    number = os.WTERMSIG(status)
    name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
    if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu >= limits["cpu_seconds"]):
        return _end(Reason.CPU_LIMIT, f"the CPU limit of {limits['cpu_seconds']:g} s was reached")
    if number == signal.SIGSYS:
        return _end(Reason.SANDBOX_VIOLATION, "a forbidden system call (SIGSYS)")
    if number == signal.SIGXFSZ:
        return _end(Reason.OUTPUT_LIMIT, "a file went past the work dir's file-size limit")
    near_memory = rss_kib >= limits["memory_mib"] * 1024 * 0.9
    if near_memory and number in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
        return _end(Reason.MEMORY_LIMIT, f"the plugin died ({name}) at its memory limit")
    return _end(Reason.ERROR, f"the plugin's process died of {name}")


def _end(reason: Reason, detail: str) -> dict[str, Any]:
    return {"reason": reason, "result": None, "detail": detail}
