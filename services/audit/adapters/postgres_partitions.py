"""The monthly partitions of `audit.records`: created on demand, dropped by retention.

A month's partition is created in a short transaction of its own before the first append into
it; the months known to exist are remembered, so an append into a known month costs nothing.
Creating a partition locks the whole table, so it waits for every query on it (a long export,
say) and every query waits behind it: each append also creates the next month's partition
ahead of time, giving up at once (and trying again a minute later) if the table is busy, so
that the first append of a month rarely has to wait.

Retention drops whole months in one transaction: it counts their rows, then locks every tree
(as an append would, in the same order, so the two never deadlock), finds each tenant's highest
index in them (one index probe per tenant), drops them and moves each tenant's `retained_from`
past it. Appends wait only for the probes and the drops, not for the count.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC
from typing import TYPE_CHECKING

import psycopg

from outrigger import db
from outrigger.errors import DatabaseError
from services.audit.adapters import postgres_sql as sql

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

Month = tuple[int, int]
AHEAD_RETRY_SECONDS = 60.0
log = logging.getLogger("outrigger.audit")
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
        self._ahead_after = 0.0

    async def ensure(self, months: Collection[Month]) -> None:
        """Creates the partitions of `months` that this process has not seen yet, and the
        next month's if it can at once."""
        for month in sorted(set(months) - self._known):
            await self._create(month)
        following = sql.next_month(max(months))
        if following not in self._known and time.monotonic() >= self._ahead_after:
            try:
                await self._create(following, sql.AHEAD_LOCK_TIMEOUT)
            except DatabaseError as exc:
                self._ahead_after = time.monotonic() + AHEAD_RETRY_SECONDS
                log.info("audit partition %s not made ahead: %s", following, exc.detail)

    async def _create(self, month: Month, *settings: str) -> None:
        try:
            async with self._pool.connection() as connection, connection.transaction():
                for setting in settings:
                    await connection.execute(setting)
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
                names = [sql.month_name(month) for month in old]
                for name in names:  # counted before appends wait: old months take no rows
                    cursor = await connection.execute(sql.count(name))
                    dropped += (await cursor.fetchone() or (0,))[0]
                await connection.execute(sql.LOCK_ALL_TREES)
                retained: dict[str, int] = {}
                for name in names:
                    cursor = await connection.execute(sql.highest(name))
                    for tenant, highest in await cursor.fetchall():
                        retained[tenant] = max(retained.get(tenant, 0), highest + 1)
                    await connection.execute(sql.drop_partition(name))
                await connection.execute(sql.RETAIN, (list(retained), list(retained.values())))
        self._known.difference_update(old)
        return dropped


def _month(name: str) -> Month | None:
    found = _NAME.match(name)
    return (int(found[1]), int(found[2])) if found else None
