"""`outrigger migrate`: `alembic upgrade heads` (each branch) on the configured database."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config

from outrigger.settings import Settings, load_settings

_CANDIDATES = (Path(__file__).resolve().parents[2] / "migrations", Path.cwd() / "migrations")


def migrations_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "env.py").is_file():
            return candidate
    raise click.ClickException("the migrations folder was not found beside the outrigger package")


def alembic_config(settings: Settings) -> Config:
    location = migrations_dir()
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("version_locations", str(location / "versions"))
    config.set_main_option("recursive_version_locations", "true")
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = settings.database_url
    return config


def upgrade(settings: Settings, target: str = "heads") -> None:
    command.upgrade(alembic_config(settings), target)


@click.command()
@click.argument("service", required=False)
def migrate(service: str | None) -> None:
    """Apply every service's migrations (or only SERVICE's branch) to the configured database."""
    settings = load_settings()
    target = f"{service.replace('-', '_')}@head" if service else "heads"
    upgrade(settings, target)
    click.echo(f"migrated {settings.database_url.split('@')[-1]} to {target}")
