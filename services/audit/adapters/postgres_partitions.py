"""The monthly partitions of `audit.records`: created on demand, dropped by retention.

A month's partition is created in a short transaction of its own before the first append into
it (creating one locks the whole table for a moment); the months known to exist are remembered,
so an append into a known month costs nothing. Retention drops whole months in one transaction
that first locks every tree (as an append would, in the same order, so the two never deadlock),
counts what each tenant loses, drops the partitions and moves each tenant's `retained_from`
past the highest index it lost.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import TYPE_CHECKING

import psycopg

from outrigger import db
from services.audit.adapters import postgres_sql as sql

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

Month = tuple[int, int]
_NAME = re.compile(rf"^{sql.PARTITION_PREFIX}(\d{{4}})_(\d{{2}})$")


def month_of(moment: datetime) -> Month:
    utc = moment.astimezone(UTC)
    return (utc.year, utc.month)


def no_partition(exc: psycopg.errors.CheckViolation) -> bool:
    """The insert found no partition for a row (one was dropped since it was remembered)."""
    return exc.diag.constraint_name is None and "no partition" in (exc.diag.message_primary or "")


class Partitions:
    def __init__(self, pool: db.Pool) -> None:
        self._pool = pool
        self._known: set[Month] = set()

    async def ensure(self, months: Collection[Month]) -> None:
        """Creates the partitions of `months` that this process has not seen yet."""
        for month in sorted(set(months) - self._known):
            try:
                with db.translated():
                    async with self._pool.connection() as connection:
                        await connection.execute(sql.create_partition(month))
            except (psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation):
                pass  # another process created it between IF NOT EXISTS and CREATE
            self._known.add(month)

    def forget(self) -> None:
        """Partitions may have gone (retention in another process): check again."""
        self._known.clear()

    async def drop_before(self, cutoff: datetime) -> int:
        """Drops every month that ends on or before `cutoff`; the number of rows that went."""
        dropped = 0
        with db.translated():
            async with self._pool.connection() as connection, connection.transaction():
                cursor = await connection.execute(sql.PARTITIONS)
                months = [_month(name) for (name,) in await cursor.fetchall()]
                old = sorted(
                    month
                    for month in months
                    if month is not None and sql.month_start(sql.next_month(month)) <= cutoff
                )
                if not old:
                    return 0
                await connection.execute(sql.LOCK_ALL_TREES)
                retained: dict[str, int] = {}
                for month in old:
                    name = sql.month_name(month)
                    cursor = await connection.execute(sql.dropped(name))
                    for tenant, highest, count in await cursor.fetchall():
                        retained[tenant] = max(retained.get(tenant, 0), highest + 1)
                        dropped += count
                    await connection.execute(sql.drop_partition(name))
                await connection.execute(sql.RETAIN, (list(retained), list(retained.values())))
        self._known.difference_update(old)
        return dropped


def _month(name: str) -> Month | None:
    found = _NAME.match(name)
    return (int(found[1]), int(found[2])) if found else None
