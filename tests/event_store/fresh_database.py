"""A migrated database of a test's own, for tests that read the whole global log.

The PostgreSQL database of the session is shared by every event-store test, so its log holds
their events too (some encrypted under their own development keys). A test that asserts on the
whole log, from position 1, gets an empty database instead: a fresh SQLite copy, or a
PostgreSQL database created and migrated for it, dropped afterwards.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from tests.conftest import POSTGRES_URL
from tests.databases import migrated_database
from tests.event_store.api_support import database_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pytest


@contextlib.contextmanager
def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated database of `backend` that only the caller uses."""
    if backend != "postgres":
        yield database_for(backend, request, tmp_path)
        return
    with migrated_database(POSTGRES_URL) as url:
        yield url
