"""What a run's child applies to itself before plugin code runs, and the worker's network
namespace.

`Confinement.apply`, in order: a session of its own; fds 0-2 on /dev/null and the output pipe,
the result pipe on fd 3, every other fd closed; the private work dir; an empty environment;
rlimits; the job's uid (when the worker is root); parent-death signal; no_new_privs; Landlock
(raw syscalls; the best ABI the kernel has); seccomp (a raw BPF filter). no_new_privs comes
before Landlock because `landlock_restrict_self` needs it once the uid is dropped. Each layer is
applied only if the probe found it (`Layers`); a failure raises, and the child then never runs
the plugin. The seccomp filter is written for x86-64 (elsewhere the probe reports it missing).
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import signal
import struct
import sys
from dataclasses import dataclass

_libc = ctypes.CDLL(None, use_errno=True)

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 4, 22, 38
SECCOMP_MODE_FILTER = 2
SYS_LANDLOCK_CREATE, SYS_LANDLOCK_ADD, SYS_LANDLOCK_RESTRICT = 444, 445, 446  # every arch
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
LANDLOCK_CREATE_RULESET_VERSION, LANDLOCK_RULE_PATH_BENEATH = 1, 1
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000

NPROC = 16  # processes of the job's uid: effective because the uid is the job's own
NOFILE = 64
FSIZE = 64 << 20  # the largest file a run may write (EFBIG beyond: output_limit)

# Landlock access rights, by the ABI that introduced them.
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_READ = _READ_FILE | _READ_DIR
_WORK = _READ | _WRITE_FILE | sum(1 << bit for bit in (4, 5, 7, 8, 9, 10, 12))  # rm, mk*, symlink
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_WORK_BY_ABI = {1: _WORK, 2: _WORK | 1 << 13, 3: _WORK | 3 << 13}  # + refer, + truncate
_NET_CONNECT_BIND_TCP = 3  # ABI 4: no rule, so no TCP bind or connect at all
_SCOPE_ABSTRACT_UNIX_SIGNAL = 3  # ABI 6: no signal, no abstract socket outside the run


def _fail(what: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{what}: {os.strerror(errno)}")


def _syscall(number: int, *args: object) -> int:
    result: int = _libc.syscall(number, *args)
    return result


def landlock_abi() -> int:
    """The kernel's Landlock ABI, or -errno (ENOSYS: no Landlock; EOPNOTSUPP: disabled)."""
    abi = _syscall(SYS_LANDLOCK_CREATE, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    return abi if abi >= 0 else -ctypes.get_errno()


def _seccomp_program() -> bytes:
    """x86-64 only (anything else is killed), x32 refused; socket() of every family (AF_UNIX
    too: a path socket any uid may enter, as PostgreSQL's, would be reachable, and Landlock
    does not cover connect()), socketpair() but of connected kinds (stream, seqpacket: a
    datagram pair can sendto() any path socket), namespaces, ptrace and its kin, io_uring, bpf,
    userfaultfd, perf and keyrings → EPERM; clone3 → ENOSYS (libc falls back to clone, whose
    namespace flags are checked). A stream pair reaches no one (asyncio makes one)."""
    ld, jeq, jge, jset, ret, and_ = 0x20, 0x15, 0x35, 0x45, 0x06, 0x54
    denied = (41, 101, 310, 311, 425, 426, 427, 321, 323, 298, 272, 308, 248, 249, 250, 438)
    # (op, label to jump to when true, k), and ("label", None, 0) markers; a tiny assembler.
    code: list[tuple[int | str, str | None, int]] = [
        (ld, None, 4),  # the arch
        (jeq, "nr", 0xC000003E),  # AUDIT_ARCH_X86_64
        (ret, None, 0x80000000),  # anything else: kill the process
        ("nr", None, 0),
        (ld, None, 0),  # the system call's number
        (jge, "kill", 0x40000000),  # the x32 ABI
        (jeq, "clone", 56),
        (jeq, "socketpair", 53),
        (jeq, "enosys", 435),  # clone3
        *((jeq, "eperm", nr) for nr in denied),
        (ret, None, 0x7FFF0000),  # allow
        ("clone", None, 0),
        (ld, None, 16),  # args[0]: the flags
        (jset, "eperm", 0x7E020000),  # any CLONE_NEW*
        (ret, None, 0x7FFF0000),
        ("socketpair", None, 0),
        (ld, None, 24),  # args[1]: the type
        (and_, None, 0xF),  # without SOCK_NONBLOCK and SOCK_CLOEXEC
        (jeq, "allow", 1),  # SOCK_STREAM
        (jeq, "allow", 5),  # SOCK_SEQPACKET; any other falls through to EPERM
        ("eperm", None, 0),
        (ret, None, 0x00050000 | 1),
        ("enosys", None, 0),
        (ret, None, 0x00050000 | 38),
        ("kill", None, 0),
        (ret, None, 0x80000000),
        ("allow", None, 0),
        (ret, None, 0x7FFF0000),
    ]
    labels: dict[str, int] = {}
    program: list[tuple[int, str | None, int]] = []
    for op, label, k in code:
        if isinstance(op, str):
            labels[op] = len(program)
        else:
            program.append((op, label, k))
    return b"".join(
        struct.pack("=HBBI", op, labels[label] - at - 1 if label else 0, 0, k)
        for at, (op, label, k) in enumerate(program)
    )


@dataclass(frozen=True, slots=True)
class Layers:
    """The layers a worker applies to each run (what the probe found), and what they need."""

    rlimits: bool = True
    session: bool = True
    job_uid: int | None = None  # set when the worker is root: the run's own uid
    landlock_abi: int = 0  # 0: none
    seccomp: bool = True
    readable: tuple[int, ...] = ()  # O_PATH fds of the interpreter's prefix and stdlib


class Confinement:
    """Built once per worker (the BPF program, the Landlock attributes); `apply` runs in the
    forked child, a handful of system calls."""

    def __init__(self, layers: Layers) -> None:
        self.layers = layers
        self._devnull = os.open(os.devnull, os.O_RDWR)
        self._keep = sorted(layers.readable)
        program = _seccomp_program()
        self._filter = ctypes.create_string_buffer(program, len(program))
        self._fprog = struct.pack("=HxxxxxxQ", len(program) // 8, ctypes.addressof(self._filter))
        abi = min(layers.landlock_abi, 7)
        self._handled = b""
        if abi:
            fs = _FS_BY_ABI[max(a for a in _FS_BY_ABI if a <= abi)]
            attr = struct.pack("=Q", fs)
            if abi >= 4:
                attr += struct.pack("=Q", _NET_CONNECT_BIND_TCP)
            if abi >= 6:
                attr += struct.pack("=Q", _SCOPE_ABSTRACT_UNIX_SIGNAL)
            self._handled = attr
            self._work_rights = _WORK_BY_ABI[min(abi, 3)]

    def apply(
        self, work_dir: str, plugin_dir: str, cpu: float, memory_mib: int, output: int, result: int
    ) -> None:
        """In the child: confines it for one run. fd 0 becomes /dev/null, 1 and 2 `output`
        (the plugin's prints), 3 `result` (progress and the result); every other fd is closed."""
        layers = self.layers
        if layers.session:
            os.setsid()
        os.dup2(self._devnull, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.dup2(result, 3)
        start = 4
        for fd in self._keep:
            if start < fd:
                os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, 1 << 20)
        os.chdir(work_dir)
        os.environ.clear()
        if layers.rlimits:
            seconds = max(1, math.ceil(cpu))
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
            resource.setrlimit(resource.RLIMIT_DATA, (memory_mib << 20, memory_mib << 20))
            resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))
            resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if layers.job_uid is not None:
            os.setgroups([])
            os.setresgid(layers.job_uid, layers.job_uid, layers.job_uid)
            os.setresuid(layers.job_uid, layers.job_uid, layers.job_uid)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "parent-death signal")  # after the uid change
        no_new_privs()
        if self._handled:
            self.landlock(plugin_dir)
        for fd in self._keep:
            os.close(fd)
        if layers.seccomp:
            self.seccomp()

    def seccomp(self) -> None:
        """Installs the system-call filter (no_new_privs first, unless root)."""
        _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, "seccomp", self._fprog)

    def landlock(self, plugin_dir: str) -> None:
        """Narrows the file system (and TCP, and signals, by ABI) to the interpreter (read and
        execute), `plugin_dir` (read) and the current directory (read and write)."""
        handled = self._handled
        ruleset = _syscall(SYS_LANDLOCK_CREATE, handled, ctypes.c_size_t(len(handled)), 0)
        if ruleset < 0:
            raise _fail("landlock_create_ruleset")
        try:
            rules = [(fd, _EXECUTE | _READ) for fd in self.layers.readable]
            plugin = os.open(plugin_dir, os.O_PATH | os.O_CLOEXEC)
            work = os.open(".", os.O_PATH | os.O_CLOEXEC)
            rules += [(plugin, _READ), (work, self._work_rights)]
            for fd, rights in rules:
                rule = struct.pack("=Qi", rights, fd)
                if _syscall(SYS_LANDLOCK_ADD, ruleset, LANDLOCK_RULE_PATH_BENEATH, rule, 0):
                    raise _fail("landlock_add_rule")
            os.close(plugin)
            os.close(work)
            if _syscall(SYS_LANDLOCK_RESTRICT, ruleset, 0):
                raise _fail("landlock_restrict_self")
        finally:
            os.close(ruleset)


def no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")


def _prctl(option: int, value: int, what: str, pointer: bytes | None = None) -> None:
    if pointer is None:
        failed = _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)
    else:
        failed = _libc.prctl(option, ctypes.c_ulong(value), pointer, 0, 0)
    if failed:
        raise _fail(f"prctl({what})")


def open_readable() -> tuple[int, ...]:
    """O_PATH fds of the interpreter's prefix and of every stdlib folder outside it (a
    distribution's Python splits them). Opened by the worker before it gives up anything: the
    job's uid may not reach the interpreter (a prefix under a private home), and Landlock needs
    only the fds, which the child closes once its ruleset holds them."""
    found: list[str] = []
    for path in (os.path.realpath(p) for p in (sys.base_prefix, *sys.path) if p):
        if os.path.isdir(path) and not any(path.startswith(f"{p}/") or path == p for p in found):
            found.append(path)
    return tuple(os.open(path, os.O_PATH | os.O_CLOEXEC) for path in found)


def set_dumpable(dumpable: bool) -> None:
    """A worker is not dumpable, so a run of its uid cannot read or write its memory
    (`/proc/<pid>/mem` needs ptrace access, which a non-dumpable process denies its uid)."""
    _prctl(PR_SET_DUMPABLE, int(dumpable), "dumpable")


def enter_network_namespace() -> str | None:
    """Moves the calling (worker) process into an empty network namespace; None on success,
    else why not. Root unshares it alone; anyone else needs a user namespace with it, where
    the worker keeps its uid and gives up the namespace's capabilities. (It must be dumpable
    to write its own uid map.)"""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        if _libc.unshare(CLONE_NEWNET):
            return f"unshare(CLONE_NEWNET) failed as root: {os.strerror(ctypes.get_errno())}"
        return None
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET):
        reason = os.strerror(ctypes.get_errno())
        return f"unshare(CLONE_NEWUSER|CLONE_NEWNET) is not allowed to uid {uid}: {reason}"
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)
    with open("/proc/self/gid_map", "w") as file:
        file.write(f"{gid} {gid} 1")
    header = struct.pack("=Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    if _syscall(SYS_CAPSET[os.uname().machine], header, bytes(24)):
        raise _fail("capset")
    return None
