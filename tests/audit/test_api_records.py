"""Records over HTTP, on the embedded and the PostgreSQL backend: receipts and their retry,
queries with filters and cursors, masked and revealed sensitive fields, the reveal's own record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from prometheus_client import REGISTRY

from outrigger.stealth import MASKED
from outrigger.testing import unique
from tests.audit.api_support import Api, opened, record


async def test_a_record_answers_201_with_a_receipt_and_a_covering_checkpoint(api: Api) -> None:
    tenant = unique("t")
    sent = record(tenant)
    response = await api.write(sent)
    assert response.status_code == 201
    [receipt] = response.json()["receipts"]
    assert (receipt["id"], receipt["source"], receipt["tenant"]) == (
        sent["id"],
        sent["source"],
        tenant,
    )
    assert (receipt["index"], receipt["duplicate"]) == (0, False)
    assert len(bytes.fromhex(receipt["leaf_hash"])) == 32
    origin, size, _ = opened(receipt["checkpoint"])
    assert origin == f"outrigger.audit/{tenant}"
    assert size == 1


async def test_a_batch_takes_consecutive_indexes_in_order_per_tenant(api: Api) -> None:
    one, two = unique("t"), unique("t")
    receipts = await api.receipts(record(one), record(two), record(one), record(one))
    assert [(r["tenant"] == one, r["index"]) for r in receipts] == [
        (True, 0),
        (False, 0),
        (True, 1),
        (True, 2),
    ]
    assert all(r["checkpoint"]["tree_size"] > r["index"] for r in receipts)


async def test_a_retry_answers_200_with_the_first_receipt(api: Api) -> None:
    tenant = unique("t")
    sent = record(tenant)
    [first] = await api.receipts(sent)
    await api.receipts(record(tenant), record(tenant))  # the tree grows meanwhile
    again = await api.write({**sent, "data": {"other": "content"}})
    assert again.status_code == 200
    [retried] = again.json()["receipts"]
    assert retried == {**first, "duplicate": True}
    mixed = await api.write(sent, record(tenant))
    assert mixed.status_code == 201
    assert [r["duplicate"] for r in mixed.json()["receipts"]] == [True, False]
    page = (await api.http.get("/v1/records", params={"tenant": tenant})).json()
    assert len(page["records"]) == 4


async def test_the_same_id_from_two_sources_is_two_records(api: Api) -> None:
    tenant, shared = unique("t"), unique("id")
    await api.receipts(record(tenant, id=shared, source="a"), record(tenant, id=shared, source="b"))
    ambiguous = await api.http.get(f"/v1/records/{shared}")
    assert ambiguous.status_code == 409
    assert sorted(ambiguous.json()["sources"]) == ["a", "b"]
    one = await api.http.get(f"/v1/records/{shared}", params={"source": "b"})
    assert one.status_code == 200
    assert (one.json()["source"], one.json()["index"]) == ("b", 1)


async def test_a_record_reads_back_as_sent_with_its_place(api: Api) -> None:
    tenant = unique("t")
    time = "2026-11-02T09:30:00.123456+01:00"
    sent = record(tenant, time=time, outcome="failure", data={"n": 1, "nested": {"a": [1, 2]}})
    [receipt] = await api.receipts(sent)
    got = (await api.http.get(f"/v1/records/{sent['id']}")).json()
    assert {name: got[name] for name in sent if name != "time"} == {
        name: value for name, value in sent.items() if name != "time"
    }
    assert datetime.fromisoformat(got["time"]) == datetime.fromisoformat(time)
    assert got["sensitive"] == []
    assert got["subject"] is None
    assert (got["index"], got["leaf_hash"]) == (receipt["index"], receipt["leaf_hash"])
    recorded = datetime.fromisoformat(got["recorded_at"])
    assert abs(recorded - datetime.now(UTC)) < timedelta(minutes=1)


async def test_an_id_with_slashes_and_colons_is_read_and_revealed(api: Api) -> None:
    tenant = unique("t")
    for id in (f"orders/{unique('o')}/lines/7", f"a:reveal/{unique('b')}:reveal", "..", "/"):
        sent = record(tenant, id=id, source=unique("s"), data={"n": 1}, sensitive=["n"])
        [receipt] = await api.receipts(sent)
        segment = quote(id, safe="")  # `..` is spelled `%2E%2E`, or clients resolve it away
        path = f"/v1/records/{segment if segment != '..' else '%2E%2E'}"
        got = await api.http.get(path, params={"source": sent["source"]})
        assert got.status_code == 200, (id, got.text)
        assert (got.json()["id"], got.json()["index"]) == (id, receipt["index"])
        revealed = await api.http.post(
            f"{path}:reveal", params={"source": sent["source"]}, json={"reason": "audit"}
        )
        assert revealed.status_code == 200, (id, revealed.text)
        assert (revealed.json()["id"], revealed.json()["data"]) == (id, {"n": 1})
    missing = await api.http.get(f"/v1/records/{quote('no/such/record', safe='')}")
    assert missing.status_code == 404
    assert "no/such/record" in missing.json()["detail"]


async def _page(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.http.get("/v1/records", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_queries_filter_and_page_newest_first_with_an_opaque_cursor(api: Api) -> None:
    tenant = unique("t")
    base = datetime(2026, 11, 1, tzinfo=UTC)
    sent = [
        record(
            tenant,
            type="doc.read" if n % 2 else "doc.updated",
            actor=f"user-{n % 3}",
            resource=f"doc/{n % 4}",
            outcome="failure" if n % 5 == 0 else "success",
            time=(base + timedelta(hours=n)).isoformat(),
        )
        for n in range(12)
    ]
    await api.receipts(*sent)

    everything = await _page(api, tenant=tenant)
    assert [r["index"] for r in everything["records"]] == list(range(11, -1, -1))
    assert everything["next_cursor"] is None

    indexes: list[int] = []
    cursor = None
    while True:
        params = {"tenant": tenant, "limit": 5, **({"cursor": cursor} if cursor else {})}
        page = await _page(api, **params)
        indexes += [r["index"] for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert indexes == list(range(11, -1, -1))

    def expect(keep: Any) -> list[int]:
        return [n for n in range(11, -1, -1) if keep(n)]

    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"type": "doc.read"}, expect(lambda n: n % 2)),
        ({"actor": "user-1"}, expect(lambda n: n % 3 == 1)),
        ({"resource": "doc/2"}, expect(lambda n: n % 4 == 2)),
        ({"outcome": "failure"}, expect(lambda n: n % 5 == 0)),
        (
            {"from": (base + timedelta(hours=3)).isoformat(), "to": "2026-11-01T07:00:00Z"},
            expect(lambda n: 3 <= n < 7),
        ),
        ({"type": "doc.updated", "actor": "user-0"}, expect(lambda n: n % 2 == 0 and n % 3 == 0)),
        ({"type": "nothing"}, []),
    ]
    for filters, wanted in cases:
        page = await _page(api, tenant=tenant, **filters)
        assert [r["index"] for r in page["records"]] == wanted, filters
        paged: list[int] = []
        cursor = None
        while True:
            extra = {"cursor": cursor} if cursor else {}
            page = await _page(api, tenant=tenant, limit=2, **filters, **extra)
            paged += [r["index"] for r in page["records"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == wanted, filters


async def test_a_window_pages_newest_first_by_time_with_an_opaque_cursor(api: Api) -> None:
    """Within `from`/`to` the page is ordered by the records' time (then index), not the order
    they arrived in; a cursor carries both, so pages split records of one time cleanly."""
    tenant = unique("t")
    base = datetime(2026, 11, 1, tzinfo=UTC)
    hours = [4, 1, 3, 3, 0, 3, 8, 1, 3, 2]  # record n at base + hours[n]
    await api.receipts(
        *(record(tenant, time=(base + timedelta(hours=h)).isoformat()) for h in hours)
    )
    window = {"from": (base + timedelta(hours=1)).isoformat(), "to": "2026-11-01T08:00:00Z"}
    wanted = [0, 8, 5, 3, 2, 9, 7, 1]  # by (hour, index), newest first
    assert [r["index"] for r in (await _page(api, tenant=tenant, **window))["records"]] == wanted
    for limit in (1, 2, 3):
        paged: list[int] = []
        cursor: str | None = None
        while True:
            extra = {"cursor": cursor} if cursor else {}
            page = await _page(api, tenant=tenant, limit=limit, **window, **extra)
            paged += [r["index"] for r in page["records"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == wanted, limit
    # a cursor of an unwindowed page (an index alone) in a window starts from the newest
    for given, expected in (("3", wanted), ("fffffffffffff-fffffffffffffff", wanted), ("9-0", [])):
        later = await _page(api, tenant=tenant, cursor=given, **window)
        assert [r["index"] for r in later["records"]] == expected, given


async def test_tenants_do_not_see_each_other(api: Api) -> None:
    one, two = unique("t"), unique("t")
    await api.receipts(record(one), record(two), record(two))
    assert len((await _page(api, tenant=one))["records"]) == 1
    assert len((await _page(api, tenant=two))["records"]) == 2


PERSONAL = {"email": "ada@example.com", "card": {"number": "4111", "brand": "visa"}, "plan": "pro"}


async def test_sensitive_fields_are_masked_for_readers_and_revealed_with_a_reason(
    api: Api,
) -> None:
    tenant = unique("t")
    sent = record(tenant, data=PERSONAL, sensitive=["email", "card.number"], subject="user-42")
    [receipt] = await api.receipts(sent)
    masked = (await api.http.get(f"/v1/records/{sent['id']}")).json()
    assert masked["data"] == {
        "email": dict(MASKED),
        "card": {"number": dict(MASKED), "brand": "visa"},
        "plan": "pro",
    }
    listed = (await _page(api, tenant=tenant))["records"]
    assert listed[0]["data"] == masked["data"]

    reveal = api.as_("audit:reveal", subject="dpo")
    revealed = await api.http.post(
        f"/v1/records/{sent['id']}:reveal",
        json={"reason": "subject access request"},
        headers=reveal,
    )
    assert revealed.status_code == 200
    clear = revealed.json()
    assert clear["data"] == PERSONAL
    assert (clear["index"], clear["leaf_hash"]) == (receipt["index"], receipt["leaf_hash"])

    [audit, original] = (await _page(api, tenant=tenant))["records"]
    assert original["id"] == sent["id"]
    assert {name: audit[name] for name in ("type", "actor", "action", "resource", "data")} == {
        "type": "audit.record.revealed",
        "actor": "dpo",
        "action": "reveal",
        "resource": f"tests.audit/{sent['id']}",
        "data": {"reason": "subject access request"},
    }
    assert (audit["index"], audit["source"], audit["outcome"]) == (1, "audit", "success")


async def test_sensitive_fields_are_stored_encrypted_so_the_leaf_holds_no_plaintext(
    api: Api,
) -> None:
    tenant = unique("t")
    sent = record(tenant, data=PERSONAL, sensitive=["email"])
    await api.receipts(sent)
    export = await api.http.get("/v1/export", params={"tenant": tenant})
    assert "ada@example.com" not in export.text
    assert "$stealth:" in export.text
    assert "visa" in export.text


async def test_a_time_is_optional_and_defaults_to_now(api: Api) -> None:
    sent = record(unique("t"))
    await api.receipts(sent)
    got = (await api.http.get(f"/v1/records/{sent['id']}")).json()
    assert abs(datetime.fromisoformat(got["time"]) - datetime.now(UTC)) < timedelta(minutes=1)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_writes_are_counted_by_result_and_the_tree_size_is_a_gauge(api: Api) -> None:
    tenant = unique("t")
    counted = "outrigger_audit_records_ingested_total"
    before = {
        result: _metric(counted, path="http", result=result)
        for result in ("stored", "duplicate", "rejected")
    }
    sent = record(tenant)
    await api.receipts(sent, record(tenant))
    await api.receipts(sent)
    await api.write(record(tenant, outcome="maybe"))  # refused by the model, not counted
    assert _metric(counted, path="http", result="stored") - before["stored"] == 2
    assert _metric(counted, path="http", result="duplicate") - before["duplicate"] == 1
    assert _metric("outrigger_audit_tree_size", tenant=tenant) == 2
    scraped = (await api.http.get("/metrics")).text
    assert "outrigger_audit_batch_size_bucket" in scraped
