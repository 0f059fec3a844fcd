"""Crypto-shredding over HTTP, on the embedded and the PostgreSQL backend: sensitive fields are
stored encrypted and read back in clear; forgetting a subject (scope `admin`, audited) erases
them on stream reads, on the log and over Server-Sent Events, for good."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from outrigger.db import build_engine
from outrigger.stealth import MASKED
from tests.event_store.api_support import (
    PROBLEM,
    Api,
    append,
    settings_for,
)
from tests.event_store.sse_support import post_events, served
from tests.event_store.suite import new_category, new_stream

if TYPE_CHECKING:
    from pathlib import Path

ERASED = {"$erased": True, "reason": "subject key deleted"}
EMAIL = "ada@example.com"
STREET = "12 Analytical Engine Row"


def new_subject() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def personal(subject: str | None, n: int = 0, **fields: Any) -> dict[str, Any]:
    """An event holding `subject`'s email and street (sensitive), city and plan (not)."""
    metadata: dict[str, Any] = {"sensitive": ["email", "address.street"], "source": "signup"}
    if subject is not None:
        metadata["subject"] = subject
    data = {"n": n, "email": EMAIL, "address": {"street": STREET, "city": "London"}, "plan": "pro"}
    return {"type": "Registered", "data": data, "metadata": metadata, **fields}


def erased(n: int = 0) -> dict[str, Any]:
    """`personal(...)["data"]` once its subject was forgotten."""
    return {"n": n, "email": ERASED, "address": {"street": ERASED, "city": "London"}, "plan": "pro"}


async def stored_data(database_url: str, stream_id: str) -> list[str]:
    """The `data` of the stream's rows as the database holds them, as JSON text."""
    engine = build_engine(database_url, schemas=["event_store"])
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT data FROM event_store.events WHERE stream_id = :s ORDER BY version"),
                {"s": stream_id},
            )
            values = [row[0] for row in rows]
    finally:
        await engine.dispose()
    return [value if isinstance(value, str) else orjson.dumps(value).decode() for value in values]


async def stream_data(api: Api, stream_id: str) -> list[Any]:
    response = await api.http.get(f"/v1/streams/{stream_id}/events")
    assert response.status_code == 200, response.text
    return [e["data"] for e in response.json()["events"]]


async def log_data(api: Api, category: str, count: int) -> list[Any]:
    """The data of the category's events in the log, once the sequencer moved all `count`."""
    for _ in range(500):
        response = await api.http.get("/v1/log", params={"category": category})
        assert response.status_code == 200, response.text
        if len(events := response.json()["events"]) == count:
            return [e["data"] for e in events]
        await asyncio.sleep(0.01)
    raise AssertionError(f"the log holds {len(events)} events of {category}, not {count}")


async def forget(api: Api, subject: str) -> None:
    response = await api.http.delete(f"/v1/subjects/{subject}", headers=api.as_("admin"))
    assert response.status_code == 204, response.text


async def test_sensitive_fields_are_stored_encrypted_and_read_back_in_clear(api: Api) -> None:
    stream = new_stream()
    sent = personal(new_subject())
    assert (await append(api, stream, sent)).status_code == 201
    [raw] = await stored_data(api.settings.database_url, stream)
    assert EMAIL not in raw
    assert STREET not in raw
    assert "$stealth:v1:@" in raw  # under the subject's own key
    assert "London" in raw  # fields not listed as sensitive stay plain
    [read] = (await api.http.get(f"/v1/streams/{stream}/events")).json()["events"]
    assert (read["data"], read["metadata"]) == (sent["data"], sent["metadata"])


async def test_sensitive_fields_without_a_subject_are_encrypted_under_the_master_key(
    api: Api,
) -> None:
    stream = new_stream()
    await append(api, stream, personal(None))
    [raw] = await stored_data(api.settings.database_url, stream)
    assert EMAIL not in raw
    assert "$stealth:v1:" in raw
    assert "$stealth:v1:@" not in raw
    assert await stream_data(api, stream) == [personal(None)["data"]]


async def test_a_retried_protected_append_is_a_replay_and_other_content_a_conflict(
    api: Api,
) -> None:
    stream = new_stream()
    sent = personal(new_subject(), id=str(uuid.uuid4()))
    first = await append(api, stream, sent, expected="no_stream")
    again = await append(api, stream, sent, expected="no_stream")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    changed = {**sent, "data": {**sent["data"], "email": "other@example.com"}}
    conflict = await append(api, stream, changed)
    assert conflict.status_code == 409
    assert conflict.json()["event_id"] == sent["id"]
    assert await stream_data(api, stream) == [sent["data"]]


async def test_forgetting_a_subject_needs_the_admin_scope(api: Api) -> None:
    stream, subject = new_stream(), new_subject()
    await append(api, stream, personal(subject))
    for scopes in [("events:write", "events:read"), ("audit:reveal",)]:
        refused = await api.http.delete(f"/v1/subjects/{subject}", headers=api.as_(*scopes))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["required_scope"] == "admin"
    anonymous = await api.http.delete(f"/v1/subjects/{subject}", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert await stream_data(api, stream) == [personal(subject)["data"]]
    assert api.audit.records == []


async def test_a_forgotten_subjects_fields_read_back_erased_on_stream_reads_and_the_log(
    api: Api,
) -> None:
    category = new_category()
    stream = new_stream(category)
    forgotten, kept = new_subject(), new_subject()
    await append(api, stream, personal(forgotten, 0), personal(kept, 1), personal(None, 2))
    await append(api, stream, personal(forgotten, 3))
    before = (await api.http.get(f"/v1/streams/{stream}/events")).json()["events"]
    await forget(api, forgotten)
    expected = [erased(0), personal(kept, 1)["data"], personal(None, 2)["data"], erased(3)]
    after = (await api.http.get(f"/v1/streams/{stream}/events")).json()["events"]
    assert [e["data"] for e in after] == expected
    assert [(e["id"], e["version"], e["metadata"]) for e in after] == [
        (e["id"], e["version"], e["metadata"]) for e in before
    ]  # the events themselves stay
    backward = await api.http.get(f"/v1/streams/{stream}/events", params={"direction": "backward"})
    assert [e["data"] for e in backward.json()["events"]] == expected[::-1]
    assert await log_data(api, category, 4) == expected


async def test_forgetting_is_audited_and_idempotent(api: Api) -> None:
    subject = new_subject()
    await append(api, new_stream(), personal(subject))
    admin = api.as_("admin", subject="dpo")
    for _ in range(2):
        response = await api.http.delete(f"/v1/subjects/{subject}", headers=admin)
        assert response.status_code == 204
    never_seen = new_subject()
    assert (await api.http.delete(f"/v1/subjects/{never_seen}", headers=admin)).status_code == 204
    records = await api.audit.wait(3)
    assert [r.routing_key for r in records] == ["event-store.subject_forgotten"] * 3
    assert [
        (r.event.data["actor"], r.event.data["action"], r.event.data["resource"]) for r in records
    ] == [("dpo", "subject_forgotten", s) for s in (subject, subject, never_seen)]
    assert [r.event.data["data"]["had_key"] for r in records] == [True, False, False]
    assert all(r.event.data["data"]["request_id"] for r in records)


async def test_events_of_a_subject_appended_after_it_was_forgotten_are_readable(
    api: Api,
) -> None:
    stream, subject = new_stream(), new_subject()
    await append(api, stream, personal(subject, 0))
    await forget(api, subject)
    await append(api, stream, personal(subject, 1))
    assert await stream_data(api, stream) == [erased(0), personal(subject, 1)["data"]]


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({"subject": "", "sensitive": ["email"]}, "subject"),
        ({"subject": 42, "sensitive": ["email"]}, "subject"),
        ({"subject": "u-1", "sensitive": "email"}, "sensitive"),
        ({"subject": "u-1", "sensitive": [""]}, "sensitive"),
    ],
)
async def test_a_bad_subject_or_sensitive_list_is_a_422_that_stores_nothing(
    api: Api, metadata: dict[str, Any], says: str
) -> None:
    stream = new_stream()
    response = await append(
        api, stream, {"type": "T", "data": {"email": EMAIL}, "metadata": metadata}
    )
    assert response.status_code == 422
    assert says in response.json()["detail"]
    assert (await api.http.get(f"/v1/streams/{stream}")).status_code == 404


async def test_subscriptions_reveal_sensitive_fields_until_the_subject_is_forgotten(
    database: str, tmp_path: Path
) -> None:
    category = new_category()
    stream, subject = new_stream(category), new_subject()
    async with served(settings_for(database, tmp_path)) as api:
        params = {"category": category}
        async with api.subscribe(params=params) as sse:
            assert await sse.messages_until("live") == []
            await post_events(api.http, stream, personal(subject, 0), personal(None, 1))
            live = await sse.messages(2)
            assert [f.json()["data"] for f in live] == [
                personal(subject, 0)["data"],
                personal(None, 1)["data"],
            ]
            response = await api.http.delete(f"/v1/subjects/{subject}", headers=api.as_("admin"))
            assert response.status_code == 204
            await post_events(api.http, stream, personal(subject, 2))
            [after] = await sse.messages(1)
            assert after.json()["data"] == personal(subject, 2)["data"]
        async with api.subscribe(params=params) as sse:
            replayed = await sse.messages(3)
        assert [f.json()["data"] for f in replayed] == [
            erased(0),
            personal(None, 1)["data"],
            personal(subject, 2)["data"],
        ]
        async with api.subscribe(f"/v1/streams/{stream}/subscribe") as sse:
            assert [f.json()["data"] for f in await sse.messages(1)] == [erased(0)]
        await api.audit.wait(2)
        assert api.audit.actions.count("event-store.subject_forgotten") == 1
        assert "event-store.events_revealed" in api.audit.actions  # the token may reveal


async def test_without_the_reveal_scope_sensitive_fields_are_masked_everywhere(
    database: str, tmp_path: Path
) -> None:
    category = new_category()
    stream, subject = new_stream(category), new_subject()
    hidden = dict(MASKED)
    masked = {
        "n": 0,
        "email": hidden,
        "address": {"street": hidden, "city": "London"},
        "plan": "pro",
    }
    async with served(settings_for(database, tmp_path)) as api:
        await post_events(api.http, stream, personal(subject, 0), sequenced=True)
        reader = api.as_("events:read", subject="reader")
        page = await api.http.get(f"/v1/streams/{stream}/events", headers=reader)
        log = await api.http.get("/v1/log", params={"category": category}, headers=reader)
        async with api.subscribe(params={"category": category}, headers=reader) as sse:
            [streamed] = await sse.messages_until("live")
        assert [e["data"] for e in page.json()["events"]] == [masked]
        assert [e["data"] for e in log.json()["events"]] == [masked]
        assert streamed.json()["data"] == masked
        assert [r for r in api.audit.records if r.event.data["actor"] == "reader"] == []


UNREADABLE = {"$unreadable": True, "reason": "cannot be decrypted (damaged, or its key is missing)"}


async def damage_email(database_url: str, stream_id: str, version: int) -> None:
    """Flips one character of the stored ciphertext of the event's `email`."""
    engine = build_engine(database_url, schemas=["event_store"])
    where = "WHERE stream_id = :s AND version = :v"
    try:
        async with engine.begin() as connection:
            row = await connection.execute(
                text(f"SELECT data FROM event_store.events {where}"), {"s": stream_id, "v": version}
            )
            value = row.scalar_one()
            data = orjson.loads(value) if isinstance(value, str) else value
            email = data["email"]
            data["email"] = email[:-5] + ("A" if email[-5] != "A" else "B") + email[-4:]
            cast = "CAST(:d AS jsonb)" if engine.dialect.name == "postgresql" else ":d"
            await connection.execute(
                text(f"UPDATE event_store.events SET data = {cast} {where}"),
                {"d": orjson.dumps(data).decode(), "s": stream_id, "v": version},
            )
    finally:
        await engine.dispose()


async def test_a_damaged_field_reads_as_unreadable_and_readers_go_past_it(
    database: str, tmp_path: Path
) -> None:
    category = new_category()
    stream, subject = new_stream(category), new_subject()
    async with served(settings_for(database, tmp_path)) as api:
        before = REGISTRY.get_sample_value("outrigger_event_store_unreadable_fields_total") or 0
        await post_events(api.http, stream, personal(subject, 0), personal(subject, 1))
        await post_events(api.http, stream, personal(None, 2))
        await damage_email(api.settings.database_url, stream, 1)
        damaged = {**personal(subject, 1)["data"], "email": UNREADABLE}
        expected = [personal(subject, 0)["data"], damaged, personal(None, 2)["data"]]
        events = (await api.http.get(f"/v1/streams/{stream}/events")).json()["events"]
        assert [e["data"] for e in events] == expected
        async with api.subscribe(params={"category": category}) as sse:
            assert [f.json()["data"] for f in await sse.messages(3)] == expected
        after = REGISTRY.get_sample_value("outrigger_event_store_unreadable_fields_total")
        assert after == before + 2  # the stream read and the subscription
