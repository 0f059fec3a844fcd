"""A run's child: what the worker prepares for it (a plugin's entry module compiled, the stdlib
modules its code names imported), the child's process (`Child`: forked and confined before its
input arrives, so a warm worker keeps one ready for the next run), what the child does once
confined (read its input, run the module, call the function, write tagged lines on fd 3), and
the run's work dir removed after it.

fd 3 is one end of a socket pair: the worker writes the run's input (JSON) into its end and
shuts that direction; the child reads it to the end, then writes its lines back. The lines: `f`
+ why confinement failed, or `c` once confined; `p` + a progress object; then one final line:
`r` + the result, `e` + the exception (type, message, errno), `m` (memory ran out), `i` + why
the output is not a JSON object. A child whose input never comes (the worker dropped it: the
next run was another plugin's, or the worker stops) exits before any plugin code ran. Once the
plugin runs the lines are untrusted: the worker parses them, and believes them only about this
run.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import shutil
import signal
import socket
import stat
import sys
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.plugin_executor.adapters.confinement import Confinement

# Stdlib modules never imported for a plugin: they act when imported (print, open a browser,
# run the .pth files of site-packages).
NOT_PREIMPORTED = frozenset(
    {"this", "antigravity", "__hello__", "__phello__", "site", "idlelib", "tkinter", "turtle"}
)
# What the stdlib imports on first use (in C, or inside a function), preloaded with the module
# that needs it: a run's uid may not read the interpreter's files (a prefix under a private
# home), so what is not preloaded cannot be imported there.
LAZY = {
    "socket": ("encodings.idna",),
    "time": ("_strptime",),
    "datetime": ("_strptime",),
    "collections": ("heapq",),  # Counter.most_common imports it when first called
}
MAX_SOURCES, MAX_SOURCE = 200, 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    folder: str
    module: str
    function: str
    path: str
    code: types.CodeType | None  # None: imported the usual way in the child (a package)

    @classmethod
    def prepare(cls, spec: dict[str, str]) -> Entry:
        """Reads and compiles, imports stdlib modules: no plugin code runs here."""
        folder, module = spec["folder"], spec["module"]
        path = os.path.join(folder, *module.split(".")) + ".py"
        code = None
        sources = 0
        for parent, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            for name in sorted(f for f in files if f.endswith(".py"))[: MAX_SOURCES - sources]:
                sources += 1
                file = os.path.join(parent, name)
                try:
                    tree = ast.parse(_source(file), file)
                except (OSError, SyntaxError, ValueError):
                    continue  # the child meets the same error, and reports it as the plugin's
                _preimport(tree)
                if file == path and "." not in module:
                    code = compile(tree, file, "exec", dont_inherit=True)
        return cls(folder, module, spec["function"], path, code)

    def load(self) -> Callable[[dict[str, Any]], Any]:
        """In the confined child: the plugin's function, its module run."""
        sys.path.insert(0, self.folder)
        if self.code is None:
            namespace = importlib.import_module(self.module).__dict__
        else:
            module = types.ModuleType(self.module)
            module.__file__ = self.path
            sys.modules[self.module] = module
            exec(self.code, module.__dict__)
            namespace = module.__dict__
        function: Callable[[dict[str, Any]], Any] | None = namespace.get(self.function)
        if not callable(function):
            raise AttributeError(f"{self.module} has no function {self.function}")
        return function


def _source(file: str) -> bytes:
    """A plugin's source file: a regular file, never through a symlink (nor a FIFO that would
    hang the worker), at most `MAX_SOURCE` bytes."""
    fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SOURCE:
            raise ValueError(f"{file} is not a source file")
        return os.read(fd, MAX_SOURCE)
    finally:
        os.close(fd)


def _preimport(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        names += [lazy for name in names for lazy in LAZY.get(name, ())]
        for name in names:
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names and top not in NOT_PREIMPORTED:
                # Not a module (`from x import function`), or not on this host: the plugin's
                # own import then says so, in the child.
                with contextlib.suppress(Exception):
                    importlib.import_module(name)


class _NotAnObject(Exception):
    pass


def _line(tag: bytes, value: object) -> None:
    data = memoryview(tag + orjson.dumps(value) + b"\n")
    while data:
        data = data[os.write(3, data) :]


def _progress(item: object) -> None:
    if type(item) is dict and item.keys() <= {"progress", "message"}:
        value, message = item.get("progress"), item.get("message")
        number = type(value) in (int, float) and 0 <= value <= 1  # type: ignore[operator]
        if number and (message is None or type(message) is str):
            _line(b"p", {"progress": value, "message": message})
            return
    raise _NotAnObject('a progress report is {"progress": 0 to 1, "message": text}')


def _errno(exc: BaseException) -> int | None:
    """The errno of the OSError that caused `exc` (it, or one it was raised from or while
    handling, a few links deep): a library's own error around a denied call still says so."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(slots=True)
class Child:
    """The worker's side of one run's process, from its fork to its end."""

    pid: int
    plugin: str  # the key of the plugin it is confined for
    limits: dict[str, Any]  # and the limits
    run_dir: str
    lines: socket.socket  # the worker's end of fd 3: the input goes in, the lines come out
    output: int  # the read end of the child's stdout and stderr

    @classmethod
    def fork(
        cls,
        confinement: Confinement,
        entry: Entry,
        key: str,
        limits: dict[str, Any],
        run_dir: str,
        uid: int | None,
    ) -> Child:
        """A child confined for `entry` under `limits` in a new `run_dir` (given to `uid`),
        waiting for its input. Raises OSError, leaving nothing behind."""
        opened: list[Any] = []
        try:
            os.mkdir(run_dir, 0o700)
            if uid is not None:
                os.chown(run_dir, uid, uid)
            ours, theirs = socket.socketpair()
            opened += [ours, theirs]
            output_r, output_w = os.pipe()
            opened += [output_r, output_w]
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                try:
                    run_in_child(confinement, entry, limits, run_dir, output_w, theirs.fileno())
                finally:
                    os._exit(70)  # never back into the worker's loop
        except BaseException:
            for item in opened:
                item.close() if isinstance(item, socket.socket) else os.close(item)
            remove_tree(run_dir)
            raise
        theirs.close()
        os.close(output_w)
        return cls(pid, key, limits, run_dir, ours, output_r)

    def send(self, payload: bytes) -> None:
        """The run's input; a child that died before it (its confinement failed) is left to
        say why in its lines and status."""
        with contextlib.suppress(OSError):
            self.lines.sendall(payload)
            self.lines.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Once it was reaped: its fds closed, its work dir removed."""
        self.lines.close()
        os.close(self.output)
        remove_tree(self.run_dir)

    def end(self) -> None:
        """Kills and reaps it (whatever it was doing)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def drop(self) -> None:
        """A child that never got its input (so never ran plugin code): ended, closed."""
        self.end()
        self.close()


def _input() -> bytes:
    """The run's input: what comes on fd 3 until the worker shuts its side."""
    chunks = []
    while chunk := os.read(3, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def run_in_child(
    confinement: Confinement,
    entry: Entry,
    limits: dict[str, Any],
    run_dir: str,
    output: int,
    result: int,
) -> NoReturn:
    try:
        confinement.apply(
            run_dir, entry.folder, limits["cpu_seconds"], limits["memory_mib"], output, result
        )
    except BaseException as exc:
        os.write(3, b"f" + orjson.dumps(f"{type(exc).__name__}: {exc}") + b"\n")
        os._exit(70)
    os.write(3, b"c\n")
    try:
        payload = _input()  # under the run's limits already: a huge input is its memory_limit
        if not payload:
            os._exit(0)  # dropped before its run
        answer = entry.load()(orjson.loads(payload))
        if isinstance(answer, types.GeneratorType):
            generator, answer = answer, None
            while True:
                try:
                    _progress(next(generator))
                except StopIteration as stop:
                    answer = stop.value
                    break
        if type(answer) is not dict:
            raise _NotAnObject(f"the plugin returned {type(answer).__name__}, not a JSON object")
        try:
            encoded = orjson.dumps(answer)
        except orjson.JSONEncodeError as exc:
            raise _NotAnObject(f"the result is not JSON: {exc}") from None
        data = memoryview(b"r" + encoded + b"\n")
        while data:
            data = data[os.write(3, data) :]
    except MemoryError:
        os.write(3, b"m\n")
    except _NotAnObject as exc:
        _line(b"i", str(exc))
    except BaseException as exc:
        try:
            text = str(exc)[:2000]
        except Exception:
            text = "(its message could not be read)"
        _line(b"e", {"type": type(exc).__name__, "message": text, "errno": _errno(exc)})
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # the plugin closed or broke its stdout
            stream.flush()
    os._exit(0)


def remove_tree(path: str) -> None:
    """Removes a run's work dir whatever the run left in it: symlinks are removed, never
    followed; folders it made unreadable are opened up first (the worker owns them, or is root)."""
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    os.chmod(path, 0o700)
    for parent, dirs, _ in os.walk(path):
        for name in dirs:
            folder = os.path.join(parent, name)
            if stat.S_ISDIR(os.lstat(folder).st_mode):
                os.chmod(folder, 0o700)
    shutil.rmtree(path, ignore_errors=True)
