"""Throwaway databases for tests: PostgreSQL databases beside the test one, SQLite copies.

A fresh PostgreSQL database keeps a test's data (a global log starting at 1, say) apart from
every other test and every concurrent run on the same server.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest

from outrigger.cli.migrate import upgrade
from outrigger.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def database_url(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _admin(url: str) -> str:
    return database_url(url, "postgres").replace("postgresql+psycopg://", "postgresql://", 1)


def create_database(url: str, prefix: str = "es_test") -> str:
    """Creates a fresh, empty database beside the one of `url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(_admin(url), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {url} does not answer ({exc}); start it")
    return database_url(url, name)


def drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    with psycopg.connect(_admin(url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def migrated_database(url: str, prefix: str = "es_test") -> Iterator[str]:
    """A fresh database beside the one of `url`, migrated, dropped on exit; yields its URL."""
    fresh = create_database(url, prefix)
    try:
        upgrade(Settings(database_url=fresh))
        yield fresh
    finally:
        drop_database(fresh)


def copy_sqlite(template: Path, folder: Path) -> str:
    """A migrated SQLite database in `folder` (main file + attached schema files)."""
    for file in template.glob("*.db"):
        shutil.copy(file, folder / file.name)
    return f"sqlite+aiosqlite:///{folder / 'outrigger.db'}"
