"""Copies of the migrated SQLite template (the session's template is a conftest fixture)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def copy_sqlite(template: Path, folder: Path) -> str:
    """A migrated SQLite database in `folder` (main file + attached `event_store` file)."""
    for file in template.glob("*.db"):
        shutil.copy(file, folder / file.name)
    return f"sqlite+aiosqlite:///{folder / 'outrigger.db'}"
