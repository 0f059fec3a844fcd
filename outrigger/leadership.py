"""Leader election: one process of many runs a piece of work (a sequencer, a relay).

    election = AdvisoryLockLeadership(connect, "event_store.sequencer", check_interval=1.0)
    sequencer = Elected(election, work, interval=1.0, name="event-store-sequencer")
    sequencer.start()   # in the lifespan; `await sequencer.stop()` at shutdown

`lead(work)` returns False at once while another process leads, so `Elected` stands again
after its interval; while this process leads it runs `work`, cancelling it and raising
`LeadershipLost` the moment leadership is lost. On PostgreSQL the leader holds a session
advisory lock on a dedicated connection: when that connection drops (a crash, a network cut),
the server releases the lock and another process takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

import psycopg
from prometheus_client import Gauge

from outrigger.errors import InfrastructureError
from outrigger.tasks import Periodic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

# Two int4 keys: every kit election shares this first key, apart from one-bigint stream locks.
ELECTIONS: Final = 1702261619

LEADER = Gauge("outrigger_leader", "1 while this process leads the named election.", ["election"])
log = logging.getLogger("outrigger.leadership")


class LeadershipLost(InfrastructureError):
    """Leadership ended while the work ran (its connection failed): another process may lead."""


class Leadership(Protocol):
    name: str
    leading: bool
    """True while this process runs the work as leader."""

    async def lead(self, work: Callable[[], Awaitable[Any]]) -> bool:
        """Runs `work` if this process leads, for as long as it does.

        Returns False at once when another process leads; True when `work` returned. Raises
        what `work` raised, or `LeadershipLost` (after cancelling `work`) when leadership ends
        under it.
        """
        ...


class Elected:
    """Runs the loop `work` whenever this process wins `leadership` (after `prepare`, at the
    start of each term), until `stop()`: it stands again every `interval` seconds while another
    process leads, and after leadership was lost (then with the kit loop's backoff). `stop()`
    lets the work's step under way finish (cancelling it past half a second) and hands
    leadership on."""

    def __init__(
        self,
        leadership: Leadership,
        work: Periodic,
        *,
        interval: float,
        name: str,
        prepare: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._leadership = leadership
        self._work = work
        self._prepare = prepare
        self._loop = Periodic(self._stand, interval, name=name, grace=0.5)

    @property
    def leading(self) -> bool:
        return self._leadership.leading

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._work.stop()
        await self._loop.stop()

    async def _stand(self) -> bool:
        return await self._leadership.lead(self._term)

    async def _term(self) -> None:
        if self._prepare is not None:
            await self._prepare()
        await self._work.run()


class SoleLeadership:
    """The only process there is (an embedded backend): it always leads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.leading = False

    async def lead(self, work: Callable[[], Awaitable[Any]]) -> bool:
        with _leading(self):
            await work()
        return True


class AdvisoryLockLeadership:
    """Leads while holding `pg_try_advisory_lock(ELECTIONS, hashtext(name))` on a connection of
    its own, made by `connect` (autocommit) and checked every `check_interval` seconds."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        name: str,
        *,
        check_interval: float = 1.0,
    ) -> None:
        self.name = name
        self.leading = False
        self._connect = connect
        self._check_interval = check_interval

    async def lead(self, work: Callable[[], Awaitable[Any]]) -> bool:
        try:
            async with await self._connect() as connection:
                if not await self._locked(connection):
                    return False
                log.info("this process now leads %s", self.name)
                with _leading(self):
                    await self._while_held(connection, work)
        except (psycopg.Error, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LeadershipLost(
                f"{self.name}: leadership lost or not reachable: {reason}"
            ) from exc
        return True

    async def _locked(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        cursor = await connection.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (ELECTIONS, self.name)
        )
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def _while_held(
        self, connection: psycopg.AsyncConnection[Any], work: Callable[[], Awaitable[Any]]
    ) -> None:
        working = asyncio.ensure_future(work())
        holding = asyncio.ensure_future(self._hold(connection))
        try:
            await asyncio.wait([working, holding], return_when=asyncio.FIRST_COMPLETED)
        finally:
            working.cancel()
            holding.cancel()
            await asyncio.gather(working, holding, return_exceptions=True)
        for task in (holding, working):  # a lost connection first: it explains the rest
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _hold(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Returns never; raises when the lock's connection fails (the lock went with it)."""
        while True:
            await asyncio.sleep(self._check_interval)
            await connection.execute("SELECT 1")


@contextlib.contextmanager
def _leading(leadership: SoleLeadership | AdvisoryLockLeadership) -> Iterator[None]:
    leadership.leading = True
    LEADER.labels(leadership.name).set(1)
    try:
        yield
    finally:
        leadership.leading = False
        LEADER.labels(leadership.name).set(0)
