"""The one Alembic environment. Each service that owns tables has a branch in `versions/<schema>/`
(branch label = folder name = its PostgreSQL schema); `outrigger migrate` runs `upgrade heads`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import context

from outrigger.db import build_engine
from outrigger.settings import load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

VERSIONS = Path(__file__).parent / "versions"
SCHEMAS = sorted(p.name for p in VERSIONS.iterdir() if p.is_dir() and not p.name.startswith("_"))


def _url() -> str:
    url = context.config.attributes.get("database_url")
    return str(url) if url else load_settings().database_url


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        include_schemas=True,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = build_engine(_url(), schemas=SCHEMAS)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True, include_schemas=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
