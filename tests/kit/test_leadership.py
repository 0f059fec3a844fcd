"""Leader election: one process of many runs the work; losing the lock's connection stops it at
once and another takes over."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from outrigger.leadership import AdvisoryLockLeadership, Elected, LeadershipLost, SoleLeadership
from outrigger.tasks import Periodic
from outrigger.testing import unique


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class Work:
    """Work that runs until cancelled, counting the terms it was given."""

    def __init__(self) -> None:
        self.terms = 0
        self.running = asyncio.Event()

    async def __call__(self) -> None:
        self.terms += 1
        self.running.set()
        try:
            await asyncio.sleep(3600)
        finally:
            self.running.clear()


async def until(condition: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_the_sole_process_always_leads() -> None:
    leadership = SoleLeadership("solo")
    seen = []

    async def work() -> None:
        seen.append(leadership.leading)

    assert await leadership.lead(work) is True
    assert seen == [True]
    assert not leadership.leading


@pytest.mark.postgres
async def test_one_of_two_leads_and_the_other_takes_over_when_it_stops(postgres_url: str) -> None:
    name = unique("election-")
    works = [Work(), Work()]
    elections = [
        Elected(
            AdvisoryLockLeadership(
                lambda: psycopg.AsyncConnection.connect(libpq(postgres_url), autocommit=True),
                name,
                check_interval=0.05,
            ),
            Periodic(work, 1.0, name=f"work-{index}"),
            interval=0.05,
            name=f"test-{index}",
        )
        for index, work in enumerate(works)
    ]
    for election in elections:
        election.start()
    try:
        await until(lambda: any(election.leading for election in elections))
        await asyncio.sleep(0.3)
        assert [election.leading for election in elections].count(True) == 1
        leader = next(i for i, election in enumerate(elections) if election.leading)
        await elections[leader].stop()
        assert not works[leader].running.is_set()
        await until(lambda: elections[1 - leader].leading and works[1 - leader].running.is_set())
    finally:
        for election in elections:
            await election.stop()


@pytest.mark.postgres
async def test_a_dropped_lock_connection_ends_the_work_at_once(postgres_url: str) -> None:
    name, application = unique("election-"), unique("lock-")
    leadership = AdvisoryLockLeadership(
        lambda: psycopg.AsyncConnection.connect(
            libpq(postgres_url), autocommit=True, application_name=application
        ),
        name,
        check_interval=0.05,
    )
    work = Work()
    leading = asyncio.create_task(leadership.lead(work))
    await asyncio.wait_for(work.running.wait(), 10)
    async with await psycopg.AsyncConnection.connect(libpq(postgres_url), autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application,),
        )
    with pytest.raises(LeadershipLost, match=f"{name}: leadership lost"):
        await asyncio.wait_for(leading, 5)
    assert not work.running.is_set()
    assert not leadership.leading


@pytest.mark.postgres
async def test_while_another_leads_lead_returns_false_at_once(postgres_url: str) -> None:
    name = unique("election-")

    def connect() -> Any:
        return psycopg.AsyncConnection.connect(libpq(postgres_url), autocommit=True)

    holder, other = AdvisoryLockLeadership(connect, name), AdvisoryLockLeadership(connect, name)
    work = Work()
    holding = asyncio.create_task(holder.lead(work))
    await asyncio.wait_for(work.running.wait(), 10)
    try:
        assert await asyncio.wait_for(other.lead(Work()), 5) is False
    finally:
        holding.cancel()
        await asyncio.gather(holding, return_exceptions=True)


async def test_stopping_lets_the_step_under_way_finish_and_returns_at_once() -> None:
    steps: list[str] = []

    async def step() -> None:
        steps.append("started")
        await asyncio.sleep(0.05)
        steps.append("finished")

    elected = Elected(
        SoleLeadership("solo"), Periodic(step, 60, name="work"), interval=60, name="t"
    )
    elected.start()
    await until(lambda: steps == ["started"])
    loop = asyncio.get_running_loop()
    began = loop.time()
    await elected.stop()
    assert steps == ["started", "finished"]  # not cancelled half-way
    assert loop.time() - began < 0.3  # and not held for the grace either
