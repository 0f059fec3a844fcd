"""`outrigger migrate`: `alembic upgrade heads` (each branch) on the configured database.

Each service that owns tables has a branch named after its package, in `migrations/versions/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from outrigger import catalog
from outrigger.cli.output import CommandFailed, UserError, known_service, without_password

if TYPE_CHECKING:
    from alembic.config import Config

    from outrigger.settings import Settings

_CANDIDATES = (Path(__file__).resolve().parents[2] / "migrations", Path.cwd() / "migrations")


def migrations_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "env.py").is_file():
            return candidate
    raise CommandFailed("the migrations folder was not found beside the outrigger package")


def alembic_config(settings: Settings) -> Config:
    from alembic.config import Config

    location = migrations_dir()
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("version_locations", str(location / "versions"))
    config.set_main_option("recursive_version_locations", "true")
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = settings.database_url
    return config


def upgrade(settings: Settings, target: str = "heads") -> None:
    from alembic import command

    command.upgrade(alembic_config(settings), target)


def upgrade_or_fail(settings: Settings, target: str = "heads") -> None:
    """`upgrade`, with a database that cannot be reached or written as one line (exit 1)."""
    from sqlalchemy.exc import OperationalError

    try:
        upgrade(settings, target)
    except (OperationalError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = without_password(settings.database_url)
        raise CommandFailed(f"cannot migrate {where}: {reason}") from None


def branch(service: str) -> str:
    """The migration branch of `service`; a `UserError` when it owns no tables."""
    info = known_service(service)
    versions = migrations_dir() / "versions"
    if not (versions / info.package).is_dir():
        owners = [other.name for other in catalog.SERVICES if (versions / other.package).is_dir()]
        raise UserError(
            f"service {info.name} has no migrations; those with migrations: {', '.join(owners)}"
        )
    return info.package


@click.command()
@click.argument("service", required=False)
def migrate(service: str | None) -> None:
    """Apply every service's migrations (or only SERVICE's branch) to the configured database."""
    from outrigger.settings import load_settings

    settings = load_settings()
    target = f"{branch(service)}@head" if service else "heads"
    upgrade_or_fail(settings, target)
    click.echo(f"migrated {without_password(settings.database_url)} to {target}")
