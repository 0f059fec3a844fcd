"""The data directory: the embedded backends' files and the development secrets, private to
their user.

It is the same folder wherever a command starts (`make run`, `outrigger token` in another
directory): `$XDG_DATA_HOME/outrigger`, else `~/.local/share/outrigger`, unless
`OUTRIGGER_DATA_DIR` names another. Folders made here are 0700 and files 0600, whatever the umask
allows others.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def default() -> Path:
    """`$XDG_DATA_HOME/outrigger` (when absolute, as XDG requires), else
    `~/.local/share/outrigger`."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "outrigger"


def private_folder(path: Path) -> None:
    """Creates `path` (0700) and its missing parents (with the usual mode), if missing."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Creates `path` empty (0600) in a private folder, unless it exists; its content is kept."""
    private_folder(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
