"""The use-case room: every request is checked there, once, before the store sees it; sensitive
fields are masked or revealed (and each reveal audited) there."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.errors import InvalidInput, NotFound
from outrigger.stealth import MASKED, InMemorySubjectKeyStore, Keyring, MasterKey, Stealth
from outrigger.testing import audit_inbox, unique
from services.event_store.adapters.sqlite import SqliteEventStore
from services.event_store.domain import MAX_EVENTS_PER_APPEND, EventData, StreamMetadata
from services.event_store.usecases import (
    Caller,
    EventStoreService,
    LogSubscriptions,
    LogTail,
    SubjectShredder,
)
from tests.databases import copy_sqlite
from tests.event_store.suite import batch, new_stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from outrigger.testing import AuditInbox

READER = Caller("reader")
REVEALER = Caller("auditor", reveal=True)
PERSONAL = EventData(
    "Registered",
    {"email": "ada@example.com", "plan": "pro"},
    {"subject": "u-1", "sensitive": ["email"]},
)


@pytest.fixture
async def service(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[EventStoreService]:
    store = SqliteEventStore.open(copy_sqlite(sqlite_template, tmp_path))
    bus = connect_bus(f"memory://{unique('bus')}", source="event-store")
    await bus.start()
    tail = LogTail(store, batch_size=10, idle_wait=0.1)
    subscriptions = LogSubscriptions(store, tail, batch_size=10, max_buffered=10)
    shredder = SubjectShredder(
        Stealth(Keyring([MasterKey.generate("k1")]), InMemorySubjectKeyStore())
    )
    yield EventStoreService(store, shredder, AuditTrail(bus, "event-store"), subscriptions)
    await tail.close()
    await bus.close()
    await store.close()


@pytest.fixture
async def audit(service: EventStoreService) -> AuditInbox:
    return await audit_inbox(service.audit.bus, "event-store")


async def versions(service: EventStoreService, stream: str) -> list[int]:
    try:
        page = await service.read_stream(stream, READER, limit=1000)
    except NotFound:
        return []
    return [event.version for event in page.events]


async def test_a_batch_holds_1_to_1000_events(service: EventStoreService) -> None:
    stream = new_stream()
    with pytest.raises(InvalidInput, match="1 to 1000 events"):
        await service.append(stream, batch(MAX_EVENTS_PER_APPEND + 1))
    with pytest.raises(InvalidInput, match="got 0"):
        await service.append(stream, [])
    assert await versions(service, stream) == []


@pytest.mark.parametrize(
    "bad",
    [
        EventData("has space", {}),
        EventData("", {}),
        EventData("T", {}, schema_version=0),
        EventData("T", {}, {"subject": 42}),
        EventData("T", {}, {"sensitive": "card"}),
    ],
)
async def test_a_bad_event_refuses_the_whole_batch(
    service: EventStoreService, bad: EventData
) -> None:
    stream = new_stream()
    await service.append(stream, batch(1))
    with pytest.raises(InvalidInput):
        await service.append(stream, [*batch(2), bad, *batch(1)])
    assert await versions(service, stream) == [0]


async def test_ids_repeated_in_a_batch_are_refused_with_their_place(
    service: EventStoreService,
) -> None:
    sent = batch(1)
    with pytest.raises(InvalidInput, match="duplicate id") as caught:
        await service.append(new_stream(), [*batch(1), *sent, *sent])
    assert caught.value.errors == [
        {"loc": ["events", 2, "id"], "msg": f"duplicate id {sent[0].id}"}
    ]


@pytest.mark.parametrize("stream_id", ["", "a b", "x" * 201, "café-1", "a/b", "a\nb", 7])
async def test_bad_stream_ids_are_refused(service: EventStoreService, stream_id: object) -> None:
    with pytest.raises(InvalidInput, match="stream id must be 1-200 characters"):
        await service.append(stream_id, batch(1))  # type: ignore[arg-type]


@pytest.mark.parametrize("expected", ["sometimes", -1, 2**53, True, 1.5, None])
async def test_bad_expected_versions_are_refused(
    service: EventStoreService, expected: object
) -> None:
    with pytest.raises(InvalidInput, match="expected_version must be"):
        await service.append(new_stream(), batch(1), expected)
    with pytest.raises(InvalidInput, match="expected_version must be"):
        await service.delete(new_stream(), READER, hard=False, expected_version=expected)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"from_version": -1}, "from_version must be an integer from 0 to 2"),
        ({"from_version": 2**53}, "from_version must be an integer from 0 to 2"),
        ({"direction": "sideways"}, "direction must be"),
    ],
)
async def test_bad_read_options_are_refused(
    service: EventStoreService, options: dict[str, object], message: str
) -> None:
    stream = new_stream()
    await service.append(stream, batch(1))
    with pytest.raises(InvalidInput, match=message):
        await service.read_stream(stream, READER, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"limit": 0}, {"limit": 10_001}, {"after_position": -1}, {"after_position": 2**53}],
)
async def test_bad_log_reads_are_refused(
    service: EventStoreService, options: dict[str, int]
) -> None:
    with pytest.raises(InvalidInput):
        await service.read_log(READER, **options)
    with pytest.raises(InvalidInput, match="category"):
        await service.read_log(READER, 0, category="bad category")


@pytest.mark.parametrize(
    "metadata",
    [
        StreamMetadata(max_age=0),
        StreamMetadata(max_age=10**11),
        StreamMetadata(max_count=-1),
        StreamMetadata(truncate_before=-1),
    ],
)
async def test_bad_metadata_is_refused(
    service: EventStoreService, metadata: StreamMetadata
) -> None:
    stream = new_stream()
    with pytest.raises(InvalidInput):
        await service.set_metadata(stream, metadata, READER)
    with pytest.raises(NotFound):
        await service.stream_info(stream)


async def test_sensitive_fields_are_masked_without_the_reveal_scope(
    service: EventStoreService, audit: AuditInbox
) -> None:
    stream = new_stream()
    await service.append(stream, [PERSONAL])
    [event] = (await service.read_stream(stream, READER)).events
    assert event.data == {"email": dict(MASKED), "plan": "pro"}
    [logged], _ = await service.read_log(READER, (event.global_position or 1) - 1, 1)
    assert logged.data == event.data
    assert audit.records == []


async def test_each_reveal_is_an_audit_record_naming_the_events(
    service: EventStoreService, audit: AuditInbox
) -> None:
    stream = new_stream()
    await service.append(stream, [*batch(1), PERSONAL])
    page = await service.read_stream(stream, REVEALER)
    assert page.events[1].data == {"email": "ada@example.com", "plan": "pro"}
    [record] = await audit.wait(1)
    assert record.routing_key == "event-store.events_revealed"
    assert record.event.data["actor"] == "auditor"
    assert record.event.data["resource"] == stream
    assert record.event.data["data"] == {"count": 1, "event_ids": [str(page.events[1].id)]}


async def test_a_retried_protected_append_is_a_replay(service: EventStoreService) -> None:
    stream = new_stream()
    event = EventData(PERSONAL.type, PERSONAL.data, PERSONAL.metadata, uuid.uuid4())
    first = await service.append(stream, [event])
    again = await service.append(stream, [event])
    assert (again.first_version, again.replayed) == (first.first_version, True)
