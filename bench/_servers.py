"""What the benchmarks share about servers: their URL options, and a throwaway database.

Imported by the scripts beside it; the leading underscore keeps `make bench` from running it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING

import psycopg

from outrigger.cli.migrate import upgrade
from outrigger.settings import Settings
from services.event_store.adapters.postgres_connection import conninfo

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def add_server_options(parser: argparse.ArgumentParser, *, amqp: bool = False) -> None:
    """`--url` (PostgreSQL) and, with `amqp`, `--amqp-url`: the test suite's variables, else
    the local servers."""
    postgres = os.environ.get("OUTRIGGER_TEST_POSTGRES_URL", POSTGRES_URL)
    parser.add_argument("--url", default=postgres, help=f"PostgreSQL (default {postgres})")
    if amqp:
        broker = os.environ.get("OUTRIGGER_TEST_AMQP_URL", AMQP_URL)
        parser.add_argument("--amqp-url", default=broker, help="RabbitMQ")


@contextlib.contextmanager
def throwaway_database(url: str, prefix: str) -> Iterator[str]:
    """A new database on `url`'s server, migrated; its URL. Dropped on exit, connections and all."""
    base, _, _ = url.rpartition("/")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = conninfo(f"{base}/postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(Settings(database_url=f"{base}/{name}"))
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
