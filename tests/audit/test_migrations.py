"""The `audit` Alembic branch upgrades and downgrades on both databases, and `outrigger migrate
audit` applies it alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from outrigger.cli import main
from outrigger.cli.migrate import alembic_config
from outrigger.db import conninfo
from outrigger.settings import Settings
from tests.conftest import POSTGRES_URL
from tests.databases import create_database, drop_database

if TYPE_CHECKING:
    from pathlib import Path

TABLES = {"records", "record_keys", "nodes", "trees", "checkpoints", "stealth_subject_keys"}


def sqlite_tables(folder: Path, schema: str = "audit") -> set[str]:
    engine = sa.create_engine(f"sqlite:///{folder / f'outrigger.{schema}.db'}")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    config = alembic_config(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'outrigger.db'}")
    )
    command.upgrade(config, "audit@head")
    assert sqlite_tables(tmp_path) == TABLES
    command.downgrade(config, "audit@base")
    assert sqlite_tables(tmp_path) == set()
    command.upgrade(config, "heads")
    assert sqlite_tables(tmp_path) == TABLES


def test_outrigger_migrate_audit_applies_its_branch_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTRIGGER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'outrigger.db'}")
    result = CliRunner().invoke(main, ["migrate", "audit"])
    assert result.exit_code == 0, result.output
    assert "to audit@head" in result.output
    assert sqlite_tables(tmp_path) == TABLES
    assert sqlite_tables(tmp_path, "event_store") == set()


@pytest.mark.postgres
def test_postgres_upgrade_downgrade_upgrade() -> None:
    url = create_database(POSTGRES_URL, "audit_test")
    config = alembic_config(Settings(database_url=url))

    def tables() -> dict[str, str]:
        with psycopg.connect(conninfo(url)) as connection:
            rows = connection.execute(
                "SELECT c.relname, c.relkind FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'audit' AND c.relkind IN ('r', 'p')"
            ).fetchall()
        return dict(rows)

    try:
        command.upgrade(config, "audit@head")
        assert set(tables()) == TABLES
        assert tables()["records"] == "p"  # partitioned, by recorded_at
        command.downgrade(config, "audit@base")
        assert tables() == {}
        command.upgrade(config, "heads")
        assert set(tables()) == TABLES
    finally:
        drop_database(url)
