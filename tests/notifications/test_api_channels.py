"""Publishing and describing channels over HTTP: history ids, a retried id stored (and
delivered) once, what a body may hold, audit records, and what a channel's description shows to
whom."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from outrigger.testing import unique
from tests.notifications.api_support import PROBLEM, ids, messages, sample, served


async def test_publishing_answers_the_history_id_and_a_retried_id_is_stored_once() -> None:
    channel = unique("orders")
    before = sample("outrigger_notifications_duplicates_total", via="http")
    async with served() as hub, hub.subscribe(channel) as stream:
        body = {"event": "order.paid", "data": {"order": 7}, "id": "order-7-paid"}
        first = await hub.http.post(f"/v1/channels/{channel}/events", json=body)
        retried = await hub.http.post(f"/v1/channels/{channel}/events", json=body)
        after = await hub.publish(channel, "after the retry")
        frames = await messages(stream, 2)
    assert first.status_code == 201
    assert first.json() == {"channel": channel, "id": first.json()["id"], "duplicate": False}
    assert retried.status_code == 200
    assert retried.json() == {**first.json(), "duplicate": True}
    assert ids(frames) == [first.json()["id"], after], "the retry reached nobody"
    assert sample("outrigger_notifications_duplicates_total", via="http") == before + 1


async def test_history_ids_increase_across_channels() -> None:
    async with served() as hub:
        sent = [await hub.publish(unique("c"), n) for n in range(5)]
    as_numbers = [tuple(int(part) for part in sent_id.split("-")) for sent_id in sent]
    assert as_numbers == sorted(as_numbers)
    assert len(set(sent)) == 5


async def test_a_message_published_over_http_is_audited_with_its_publisher() -> None:
    channel = unique("audited")
    async with served() as hub, httpx.AsyncClient(base_url=hub.url) as client:
        headers = hub.as_("notify:publish", subject="billing")
        body = {"event": "invoice.sent", "data": None}
        answer = await client.post(f"/v1/channels/{channel}/events", json=body, headers=headers)
        [record] = await hub.audit.wait(1)
    assert record.routing_key == "notifications.publish"
    document = record.event.data
    assert (document["actor"], document["resource"], document["outcome"]) == (
        "billing",
        channel,
        "success",
    )
    assert document["data"]["event"] == "invoice.sent"
    assert document["data"]["id"] == answer.json()["id"]


BIG = "x" * (64 * 1024)


@pytest.mark.parametrize(
    ("channel", "body", "status", "named"),
    [
        ("orders..paid", {"event": "e", "data": 1}, 422, "orders..paid"),
        ("a." * 130 + "b", {"event": "e", "data": 1}, 422, "is not valid"),
        ("orders", {"event": "has space", "data": 1}, 422, "event"),
        ("orders", {"event": "reset", "data": 1}, 422, "hub's own"),
        ("orders", {"event": "e", "data": 1, "id": "with space"}, 422, "id"),
        ("orders", {"event": "e"}, 422, "data"),
        ("orders", {"event": "e", "data": 1, "extra": 2}, 422, "extra"),
        ("orders", {"event": "e", "data": BIG[:-1]}, 413, "65,536 are accepted"),
        ("orders", {"event": "e", "data": BIG + BIG}, 413, "request body exceeds the limit"),
    ],
)
async def test_a_bad_publish_is_a_problem_naming_what_is_wrong_and_stores_nothing(
    channel: str, body: dict[str, Any], status: int, named: str
) -> None:
    async with served() as hub:
        answer = await hub.http.post(f"/v1/channels/{channel}/events", json=body)
        described = await hub.http.get("/v1/channels/orders")
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert named in answer.text
    assert described.json()["length"] == 0


async def test_data_of_64_kib_is_accepted() -> None:
    """64 KiB of JSON: a string of 65,534 characters and its two quotes."""
    async with served() as hub:
        answer = await hub.http.post(
            f"/v1/channels/{unique('big')}/events", json={"event": "e", "data": BIG[:-2]}
        )
    assert answer.status_code == 201, answer.text


async def test_publishing_needs_the_publish_scope() -> None:
    async with served() as hub, httpx.AsyncClient(base_url=hub.url) as client:
        path = f"/v1/channels/{unique('c')}/events"
        nobody = await client.post(path, json={"event": "e", "data": 1})
        reader = await client.post(
            path, json={"event": "e", "data": 1}, headers=hub.as_("notify:subscribe")
        )
    assert nobody.status_code == 401
    assert reader.status_code == 403
    assert reader.json()["required_scope"] == "notify:publish"


async def test_a_channel_shows_its_subscribers_on_every_replica_and_its_history() -> None:
    root = unique("shop")
    channel = f"{root}.orders"
    async with served() as hub:
        empty = (await hub.http.get(f"/v1/channels/{channel}")).json()
        first = await hub.publish(channel, 1)
        last = await hub.publish(channel, 2)
        async with (
            hub.subscribe(channel),
            hub.subscribe(f"{root}.*", f"{root}.other"),
            hub.subscribe(f"{root}.other"),
        ):
            described = (await hub.http.get(f"/v1/channels/{channel}")).json()
        after = (await hub.http.get(f"/v1/channels/{channel}")).json()
    assert empty == {
        "channel": channel,
        "subscribers": 0,
        "length": 0,
        "first_id": None,
        "last_id": None,
    }
    assert described == {
        "channel": channel,
        "subscribers": 2,
        "length": 2,
        "first_id": first,
        "last_id": last,
    }
    assert after["subscribers"] == 0


async def test_describing_a_channel_needs_publish_or_a_grant_covering_it() -> None:
    channel = unique("private") + ".inbox"
    async with served() as hub, httpx.AsyncClient(base_url=hub.url) as client:
        path = f"/v1/channels/{channel}"
        publisher = await client.get(path, headers=hub.as_("notify:publish", channels=[]))
        granted = await client.get(
            path, headers=hub.as_("notify:subscribe", channels=[channel.split(".")[0] + ".*"])
        )
        not_granted = await client.get(
            path, headers=hub.as_("notify:subscribe", channels=["elsewhere.*"])
        )
        neither = await client.get(path, headers=hub.as_("cache:read"))
        nobody = await client.get(path)
    assert (publisher.status_code, granted.status_code) == (200, 200)
    assert not_granted.status_code == 403
    assert repr(channel) in not_granted.json()["detail"]
    assert neither.status_code == 403
    assert "notify:subscribe" in neither.json()["detail"]
    assert nobody.status_code == 401
