"""How the worker tells a run's ending from what it saw: the child's lines, how the worker
stopped it, how its process ended (`adapters/endings.py`)."""

from __future__ import annotations

import errno
import os
import signal

import orjson
import pytest

from services.plugin_executor.adapters.endings import Lines, ending
from services.plugin_executor.domain.models import Reason

LIMITS = {"cpu_seconds": 2.0, "memory_mib": 64, "wall_seconds": 3.0, "output_kib": 1}
EXITED = 0  # a wait status: exited with 0


def lines_of(*written: bytes) -> Lines:
    """What a child wrote on its result pipe, read the way the worker reads it."""
    read, write = os.pipe()
    os.write(write, b"".join(line + b"\n" for line in written))
    os.close(write)
    lines = Lines(lambda frame: None)
    while lines.read(read, True, None):
        pass
    os.close(read)
    return lines


def end(
    *written: bytes, status: int = EXITED, cpu: float = 0.1, rss: int = 10_000
) -> tuple[str, Reason | None, str | None]:
    outcome = ending(lines_of(*written), None, status, cpu, rss, LIMITS, 1024)
    return outcome.get("op", "done"), outcome.get("reason"), outcome["detail"]


def exception(kind: str, code: int | None) -> bytes:
    return b"e" + orjson.dumps({"type": kind, "message": "no", "errno": code})


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_a_denied_operation_is_a_sandbox_violation(code: int) -> None:
    _, reason, detail = end(b"c", exception("PermissionError", code))
    assert reason is Reason.SANDBOX_VIOLATION
    assert detail == "denied by the sandbox: PermissionError: no"


@pytest.mark.parametrize("code", [None, errno.ENOENT, errno.EAGAIN])
def test_any_other_exception_is_the_plugins_error(code: int | None) -> None:
    assert end(b"c", exception("OSError", code))[1:] == (Reason.ERROR, "OSError: no")


def test_a_file_past_the_size_limit_is_the_output_limit() -> None:
    assert end(b"c", exception("OSError", errno.EFBIG))[1] is Reason.OUTPUT_LIMIT


def test_death_by_seccomp_is_a_sandbox_violation() -> None:
    assert end(b"c", status=signal.SIGSYS)[1] is Reason.SANDBOX_VIOLATION


def test_death_by_sigkill_past_the_cpu_limit_is_the_cpu_limit() -> None:
    assert end(b"c", status=signal.SIGKILL, cpu=3.0)[1] is Reason.CPU_LIMIT
    assert end(b"c", status=signal.SIGXCPU, cpu=2.0)[1] is Reason.CPU_LIMIT


def test_death_at_the_memory_limit_is_the_memory_limit() -> None:
    assert end(b"c", status=signal.SIGSEGV, rss=63 * 1024)[1] is Reason.MEMORY_LIMIT
    assert end(b"c", status=signal.SIGSEGV, rss=10 * 1024)[1:] == (
        Reason.ERROR,
        "the plugin's process died of SIGSEGV",
    )


def test_a_failed_confinement_is_the_sandboxs_fault_not_the_plugins() -> None:
    op, _, detail = end(b'f"prctl(seccomp): Invalid argument"', status=70 << 8)
    assert op == "fault"
    assert detail == "the sandbox could not confine a run: prctl(seccomp): Invalid argument"


def test_a_plugin_cannot_pass_itself_off_as_a_failed_confinement() -> None:
    op, reason, _ = end(b"c", b'f"forged"', status=70 << 8)
    assert (op, reason) == ("done", Reason.ERROR)


def test_the_first_final_line_counts_and_progress_goes_on_at_once() -> None:
    reported: list[dict] = []
    read, write = os.pipe()
    os.write(write, b'c\np{"progress":0.5,"message":"half"}\nr{"a":1}\nr{"a":2}\n')
    os.close(write)
    lines = Lines(reported.append)
    while lines.read(read, True, None):
        pass
    os.close(read)
    assert reported == [{"op": "progress", "progress": 0.5, "message": "half"}]
    assert ending(lines, None, EXITED, 0.1, 1, LIMITS, 1024)["result"] == {"a": 1}


def test_a_result_that_is_not_an_object_is_invalid_output() -> None:
    assert end(b"c", b"r[1, 2]")[1] is Reason.INVALID_OUTPUT
    assert end(b"c", b"r{not json")[1] is Reason.ERROR  # then it is no result at all
