"""Retention: records older than `OUTRIGGER_AUDIT_RETENTION_MONTHS` whole months are dropped.

The step runs on one elected replica every hour or so. The cutoff is the first day of the month
that many months back (at 00:00 UTC), so at least that many whole months are always kept; the
PostgreSQL adapter drops whole monthly partitions that end on or before it. The tree's nodes
stay: every remaining record still proves its inclusion and every checkpoint still verifies.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.audit.domain.port import AuditLog

log = logging.getLogger("outrigger.audit")


def cutoff(now: datetime, months: int) -> datetime:
    """The first moment of the month `months` before the month of `now`, in UTC."""
    years, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    return datetime(years, month + 1, 1, tzinfo=UTC)


class Retention:
    def __init__(self, log: AuditLog, months: int) -> None:
        if months < 1:
            raise ValueError(f"retention keeps at least one month, not {months}")
        self._log = log
        self._months = months

    async def __call__(self) -> bool:
        before = cutoff(datetime.now(UTC), self._months)
        dropped = await self._log.drop_before(before)
        if dropped:
            log.info("retention dropped %d audit records recorded before %s", dropped, before)
        return False
