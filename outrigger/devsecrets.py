"""Development secrets kept in the data directory, so every command of one checkout agrees.

Only for development: production configuration refuses to start without real keys, and the
callers check that before asking for a development secret.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import TYPE_CHECKING

from outrigger import datadir
from outrigger.settings import PREFIX, SettingsError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

log = logging.getLogger("outrigger.devsecrets")
_announced: set[Path] = set()


def development_secret(path: Path, make: Callable[[], str], *, what: str, instead: str) -> str:
    """The text of the secret file at `path`, created (0600, in a 0700 folder) with `make()` on
    first use.

    Concurrent first uses agree on one file. Logs once per path that `what` from it is in use and
    that `instead` is the setting for real use; an unwritable folder is a `SettingsError`.
    """
    path = path.resolve()
    if not path.exists():
        try:
            datadir.private_folder(path.parent)
            _create_exclusively(path, make())
        except OSError as exc:
            raise SettingsError(
                f"{PREFIX}DATA_DIR: cannot create the development {what} {path} ({exc.strerror})"
            ) from None
    if path not in _announced:
        _announced.add(path)
        log.warning("using the development %s in %s; set %s for real use", what, path, instead)
    return path.read_text().strip()


def _create_exclusively(path: Path, content: str) -> None:
    """Writes `content` to `path` unless another process created it first (whose file wins)."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, datadir.FILE_MODE)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(content + "\n")
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)
