"""The `event_store` Alembic branch upgrades and downgrades on both databases."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from outrigger.cli.migrate import alembic_config
from outrigger.settings import Settings
from services.event_store.adapters.postgres_connection import conninfo
from tests.conftest import POSTGRES_URL
from tests.databases import create_database, drop_database

if TYPE_CHECKING:
    from pathlib import Path

TABLES = {"streams", "events", "snapshots", "checkpoints", "stealth_subject_keys"}


def sqlite_tables(folder: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{folder / 'outrigger.event_store.db'}")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    config = alembic_config(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'outrigger.db'}")
    )
    command.upgrade(config, "event_store@head")
    assert sqlite_tables(tmp_path) == TABLES
    command.downgrade(config, "event_store@base")
    assert sqlite_tables(tmp_path) == set()
    command.upgrade(config, "heads")
    assert sqlite_tables(tmp_path) == TABLES


@pytest.mark.postgres
def test_postgres_upgrade_downgrade_upgrade() -> None:
    url = create_database(POSTGRES_URL)
    config = alembic_config(Settings(database_url=url))

    def objects() -> tuple[set[str], set[str]]:
        with psycopg.connect(conninfo(url)) as connection:
            tables = connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'event_store'"
            ).fetchall()
            functions = connection.execute(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'event_store'"
            ).fetchall()
        return {t for (t,) in tables}, {f for (f,) in functions}

    try:
        command.upgrade(config, "event_store@head")
        assert objects() == (
            TABLES | {"global_log", "sequencer_state"},
            {"append", "replayed", "sequence_batch"},
        )
        command.downgrade(config, "event_store@base")
        assert objects() == (set(), set())
        command.upgrade(config, "heads")
        assert objects()[1] == {"append", "replayed", "sequence_batch"}
    finally:
        drop_database(url)
