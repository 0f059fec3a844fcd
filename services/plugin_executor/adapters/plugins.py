"""Plugins from a folder on disk (`OUTRIGGER_PLUGIN_DIR`): each subfolder holding a
`plugin.toml` is one plugin.

A scan reads every subfolder afresh, never following a symbolic link: a link anywhere in a
plugin's folder (or a plugin folder that is one), a device or a pipe makes that folder a
problem, as does a manifest that breaks a rule (`domain.rules`). Files and dot-folders beside
the plugins (a README, `.git`) are not plugins and are passed over. Problems are reported,
never raised: the other plugins load.
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from typing import TYPE_CHECKING, Final

from services.plugin_executor.domain import (
    MANIFEST,
    InvalidManifest,
    Plugin,
    Problem,
    folder_digest,
    is_byte_code,
    newest_versions,
    plugin_of,
)
from services.plugin_executor.domain.rules import (
    BYTE_CODE_FOLDER,
    MAX_FOLDER_BYTES,
    MAX_FOLDER_FILES,
    MAX_MANIFEST_BYTES,
)

if TYPE_CHECKING:
    from pathlib import Path

    from services.plugin_executor.domain import LimitPolicy

MAX_DEPTH: Final = 16
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class PluginFolder:
    """The `PluginSource` of a folder of plugin folders."""

    def __init__(self, root: Path, policy: LimitPolicy) -> None:
        self.root = root
        self.policy = policy

    def scan(self) -> tuple[list[Plugin], list[Problem]]:
        try:
            entries = sorted(os.scandir(self.root), key=lambda entry: entry.name)
        except OSError as exc:
            return [], [Problem(str(self.root), f"the plugin folder cannot be read: {_why(exc)}")]
        found: list[tuple[str, Plugin]] = []
        problems: list[Problem] = []
        for entry in entries:
            if entry.name.startswith(".") or entry.name == BYTE_CODE_FOLDER:
                continue
            if entry.is_symlink():
                problems.append(Problem(entry.name, "is a symbolic link, which is not followed"))
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                found.append((entry.name, self.load(entry.name)))
            except InvalidManifest as exc:
                problems.append(Problem(entry.name, str(exc)))
            except OSError as exc:
                problems.append(Problem(entry.name, f"cannot be read: {_why(exc)}"))
        plugins, hidden = newest_versions(found)
        return plugins, sorted([*problems, *hidden], key=lambda problem: problem.folder)

    def load(self, name: str) -> Plugin:
        """The plugin in subfolder `name`; `InvalidManifest` (or `OSError`) if there is none."""
        folder = self.root / name
        files = _files(folder)
        if MANIFEST not in files:
            raise InvalidManifest(f"no {MANIFEST} in the folder")
        text = _read(folder, MANIFEST)
        if len(text) > MAX_MANIFEST_BYTES:
            raise InvalidManifest(f"{MANIFEST} is over {MAX_MANIFEST_BYTES // 1024} KiB")
        try:
            manifest = tomllib.loads(text.decode())
        except UnicodeDecodeError:
            raise InvalidManifest(f"{MANIFEST} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidManifest(f"{MANIFEST} is not valid TOML: {exc}") from None
        digest = folder_digest(files, lambda relative: _read(folder, relative))
        return plugin_of(manifest, folder=folder, files=files, digest=digest, policy=self.policy)


def _files(folder: Path) -> frozenset[str]:
    """The relative paths of the folder's regular files, byte code left out; `InvalidManifest`
    for a link, a special file, or a folder too deep, too full or too large."""
    files: set[str] = set()
    size = 0
    pending = [("", 0)]
    while pending:
        prefix, depth = pending.pop()
        with os.scandir(folder / prefix if prefix else folder) as entries:
            for entry in entries:
                relative = f"{prefix}{entry.name}"
                if is_byte_code(relative):
                    continue
                if entry.is_symlink():
                    raise InvalidManifest(
                        f"{relative} is a symbolic link; a plugin's folder holds none "
                        "(links are not followed)"
                    )
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 >= MAX_DEPTH:
                        raise InvalidManifest(f"{relative} is nested over {MAX_DEPTH} folders deep")
                    pending.append((relative + "/", depth + 1))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise InvalidManifest(f"{relative} is not a regular file")
                files.add(relative)
                size += entry.stat(follow_symlinks=False).st_size
                if len(files) > MAX_FOLDER_FILES or size > MAX_FOLDER_BYTES:
                    raise InvalidManifest(
                        f"the folder holds over {MAX_FOLDER_FILES} files or "
                        f"{MAX_FOLDER_BYTES // (1024 * 1024)} MiB"
                    )
    return frozenset(files)


def _read(folder: Path, relative: str) -> bytes:
    """A regular file's bytes, opened without following a link (one swapped in after the
    listing is refused, as is a pipe, which would block the read)."""
    try:
        fd = os.open(folder / relative, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidManifest(f"{relative} is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise InvalidManifest(f"{relative} is not a regular file")
        return file.read(MAX_FOLDER_BYTES + 1)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
