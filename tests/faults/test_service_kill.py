"""The event store killed (SIGKILL) while clients append, then started again."""

from __future__ import annotations

import asyncio

from outrigger.testing import unique
from tests.faults.appends import append_load, assert_relayed, assert_stored, relayed
from tests.faults.support import Service, assert_clean, loaded


async def test_a_killed_event_store_loses_no_acknowledged_append(
    event_store: Service, headers: dict[str, str]
) -> None:
    category = unique("sigkill")
    amqp_url = event_store.settings["OUTRIGGER_AMQP_URL"]
    async with relayed(amqp_url, category) as ids:
        async with loaded(append_load(event_store, headers, category)) as load:
            await asyncio.sleep(0.5)
            event_store.kill()
            await asyncio.sleep(0.5)
            event_store.start()
            assert await event_store.ready() < 30
            await asyncio.sleep(0.5)
        await assert_relayed(ids, load.acknowledged)  # the relay went on from its checkpoint
    assert_clean(load.answers, connection_errors=True)
    assert any(answer.status is None for answer in load.answers), "the kill was not seen"
    assert load.answers[-1].status == 201
    await assert_stored(event_store, headers, category, load.acknowledged)
