"""Which sandbox layers the host offers, each tried for real in a throwaway child of the worker
(so the answer is the worker's: its uid, its namespaces), with the reason for each missing one.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
from typing import TYPE_CHECKING

from services.plugin_executor.adapters.confinement import (
    Confinement,
    Layers,
    landlock_abi,
    no_new_privs,
)
from services.plugin_executor.domain.errors import SandboxUnavailable
from services.plugin_executor.domain.models import Feature, Features

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

DISABLED = "disabled by the pool's settings"


def _in_child(check: Callable[[], str | None]) -> str | None:
    """Runs `check` in a forked child: None if it passed, else why not."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            failure = check()
        except BaseException as exc:
            failure = f"{type(exc).__name__}: {exc}"
        os.write(write, (failure or "").encode()[:4096])
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = " ".join(pipe.read().decode(errors="replace").split())  # one line
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status):
        return text or f"the probe's child ended with status {status}"
    return text or None


def _rlimits() -> str | None:
    for limit in (resource.RLIMIT_CORE, resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC):
        resource.setrlimit(limit, (16, 16))
    return None


def _session() -> str | None:
    os.setsid()
    return None if os.getpgid(0) == os.getpid() else "setsid() did not make a process group"


def _separate_uid(uid: int) -> Callable[[], str | None]:
    def check() -> str | None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        return None if os.getuid() == uid else f"setresuid({uid}) did not take"

    return check


def _denies(
    layer: Layers, work_dir: str, attempt: Callable[[], object], what: str
) -> Callable[[], str | None]:
    def check() -> str | None:
        confinement = Confinement(layer)
        os.chdir(work_dir)
        no_new_privs()
        if layer.landlock_abi:
            confinement.landlock(work_dir)
        if layer.seccomp:
            confinement.seccomp()
        try:
            attempt()
        except PermissionError:
            return None
        return f"{what} was not refused"

    return check


def _landlock_missing(abi: int) -> str | None:
    if abi == -errno.ENOSYS:
        return "the kernel has no Landlock (Linux 5.13 or later, CONFIG_SECURITY_LANDLOCK)"
    if abi == -errno.EOPNOTSUPP:
        return "Landlock is built in but not enabled (add it to the lsm= boot parameter)"
    if abi < 0:
        return f"landlock_create_ruleset failed: {os.strerror(-abi)}"
    return None


def probe(
    *,
    job_uid: int | None,
    network: str | None,
    work_dir: str,
    readable: tuple[int, ...],
    disabled: Collection[Feature] = (),
) -> Features:
    """What this worker can apply, each layer tried in a throwaway child.
    `job_uid` is the uid runs would take (None: the worker is not root); `network` is why the
    worker's network namespace failed (None: it is in one); `work_dir` is the worker's own."""
    detail: dict[Feature, str] = dict.fromkeys(disabled, DISABLED)
    abi = landlock_abi()
    checks: dict[Feature, Callable[[], str | None] | str] = {
        Feature.RLIMITS: _rlimits,
        Feature.SESSION: _session,
        Feature.SEPARATE_UID: (
            _separate_uid(job_uid)
            if job_uid is not None
            else f"the workers run as uid {os.getuid()}, not root: runs share that uid"
        ),
        Feature.SECCOMP: (
            _denies(Layers(), work_dir, socket.socket, "socket(AF_INET)")
            if os.uname().machine == "x86_64"
            else f"the seccomp filter is written for x86-64, not {os.uname().machine}"
        ),
        Feature.LANDLOCK: _landlock_missing(abi)
        or _denies(
            Layers(landlock_abi=abi, seccomp=False, readable=readable),
            work_dir,
            lambda: open("/etc/passwd", "rb").close(),
            "reading /etc/passwd",
        ),
        Feature.NETWORK_NAMESPACE: network or (lambda: None),
    }
    for feature, check in checks.items():
        if feature in detail:
            continue
        failure = check if isinstance(check, str) else _in_child(check)
        if failure is not None:
            detail[feature] = failure
    return Features(frozenset(Feature) - set(detail), detail)


def layers(features: Features, *, job_uid: int | None, readable: tuple[int, ...]) -> Layers:
    """The layers each run gets: those of `features` (what the probe found)."""
    active = features.active
    return Layers(
        rlimits=Feature.RLIMITS in active,
        session=Feature.SESSION in active,
        job_uid=job_uid if Feature.SEPARATE_UID in active else None,
        landlock_abi=landlock_abi() if Feature.LANDLOCK in active else 0,
        seccomp=Feature.SECCOMP in active,
        readable=readable,
    )


def require(features: Features, required: Collection[Feature]) -> None:
    """Raises `SandboxUnavailable` (one line) when a required feature is missing."""
    missing = sorted(feature for feature in required if feature not in features.active)
    if missing:
        reasons = "; ".join(f"{f.value}: {features.detail.get(f, 'not found')}" for f in missing)
        raise SandboxUnavailable(f"the host lacks required sandbox features ({reasons})")
