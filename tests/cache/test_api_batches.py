"""Batches and invalidation over HTTP: `:mget`, `:mset`, `:invalidate` by tags or prefix."""

from __future__ import annotations

import base64

from tests.cache.http_support import PROBLEM, CacheApi, Service


class TestBatches(CacheApi):
    async def test_mset_then_mget_in_utf8_and_base64_misses_in_place(
        self, service: Service, ns: str
    ) -> None:
        binary = bytes(range(256))
        stored = await service.http.post(
            f"/v1/cache/{ns}:mset",
            json={
                "encoding": "base64",
                "entries": [
                    {"key": "text", "value": base64.b64encode("héllo".encode()).decode()},
                    {"key": "bin", "value": base64.b64encode(binary).decode(), "ttl": 30},
                    {"key": "tagged", "value": "", "tags": ["a", "b"], "content_type": "x/y"},
                ],
            },
        )
        assert stored.status_code == 200
        versions = {entry["key"]: entry["version"] for entry in stored.json()["entries"]}
        assert stored.json()["entries"][1]["ttl_ms"] == 30_000

        read = await service.http.post(
            f"/v1/cache/{ns}:mget", json={"keys": ["bin", "missing", "text", "tagged"]}
        )
        assert read.status_code == 200
        bin_, missing, text, tagged = read.json()["entries"]
        assert text["value"] == "héllo"
        assert text["encoding"] == "utf-8"
        assert bin_["encoding"] == "base64"  # not valid UTF-8, so base64 whatever was asked
        assert base64.b64decode(bin_["value"]) == binary
        nothing = dict.fromkeys(("value", "encoding", "content_type", "version", "ttl_ms", "tags"))
        assert missing == {"key": "missing", "found": False, **nothing}
        assert (tagged["tags"], tagged["content_type"]) == (["a", "b"], "x/y")
        assert {bin_["version"], text["version"]} == {versions["bin"], versions["text"]}
        raw = await service.http.get(f"/v1/cache/{ns}/bin")
        assert raw.content == binary

    async def test_one_bad_entry_refuses_the_whole_batch(self, service: Service, ns: str) -> None:
        cases = [
            ([{"key": "ok", "value": "v"}, {"key": "k" * 513, "value": "v"}], "is 513 characters"),
            ([{"key": "ok", "value": "v"}, {"key": "ok", "value": "w"}], "appears twice"),
            ([{"key": "ok", "value": "v", "ttl": -1}], "greater than or equal to 0.001"),
            ([{"key": "ok", "value": "v", "ttl": 1e308}], "less than or equal to 31536000"),
            ([{"key": "ok", "value": "v", "swr": 1e308}], "less than or equal to 31536000"),
            ([{"key": "ok", "value": "v", "ttl": 7200}], "ttl 7200000 ms is outside 1-3600000"),
            ([{"key": "ok", "value": "v", "tags": ["a,b"]}], "tag 'a,b' must be"),
        ]
        for entries, says in cases:
            refused = await service.http.post(f"/v1/cache/{ns}:mset", json={"entries": entries})
            assert refused.status_code == 422, entries
            assert refused.headers["content-type"] == PROBLEM
            assert says in str(refused.json()), refused.json()
        bad_base64 = await service.http.post(
            f"/v1/cache/{ns}:mset",
            json={"encoding": "base64", "entries": [{"key": "ok", "value": "***"}]},
        )
        assert bad_base64.status_code == 422
        assert "not valid base64" in bad_base64.json()["detail"]
        assert (await service.http.get(f"/v1/cache/{ns}/ok")).status_code == 404

    async def test_batches_hold_one_to_a_thousand_keys(self, service: Service, ns: str) -> None:
        for keys in ([], [f"k{i}" for i in range(1001)]):
            refused = await service.http.post(f"/v1/cache/{ns}:mget", json={"keys": keys})
            assert refused.status_code == 422
        entries = [{"key": f"k{i}", "value": str(i)} for i in range(1000)]
        stored = await service.http.post(f"/v1/cache/{ns}:mset", json={"entries": entries})
        assert stored.status_code == 200
        keys = [f"k{i}" for i in range(1000)]
        read = await service.http.post(f"/v1/cache/{ns}:mget", json={"keys": keys})
        assert [entry["value"] for entry in read.json()["entries"]] == [str(i) for i in range(1000)]
        duplicated = await service.http.post(f"/v1/cache/{ns}:mget", json={"keys": ["a", "a"]})
        assert duplicated.status_code == 422
        assert "appears twice" in duplicated.json()["detail"]

    async def test_invalidating_tags_removes_their_entries_and_is_audited(
        self, service: Service, ns: str
    ) -> None:
        entries = [
            {"key": "order-7", "value": "o", "tags": ["stream:order-7"]},
            {"key": "orders", "value": "l", "tags": ["stream:order-7", "lists"]},
            {"key": "user-1", "value": "u", "tags": ["stream:user-1"]},
        ]
        await service.http.post(f"/v1/cache/{ns}:mset", json={"entries": entries})
        removed = await service.http.post(
            f"/v1/cache/{ns}:invalidate", json={"tags": ["stream:order-7"]}
        )
        assert removed.json() == {"removed": 2}
        read = await service.http.post(
            f"/v1/cache/{ns}:mget", json={"keys": ["order-7", "orders", "user-1"]}
        )
        assert [entry["found"] for entry in read.json()["entries"]] == [False, False, True]
        [record] = await service.audit.wait(1)
        assert record.routing_key == "cache.invalidate"
        details = dict(record.event.data["data"])
        assert details.pop("request_id")
        assert details == {"removed": 2, "tags": ["stream:order-7"]}

    async def test_invalidating_a_prefix_removes_only_keys_under_it(
        self, service: Service, ns: str
    ) -> None:
        keys = ["user/1", "user/2", "users", "order/1"]
        entries = [{"key": key, "value": key} for key in keys]
        await service.http.post(f"/v1/cache/{ns}:mset", json={"entries": entries})
        removed = await service.http.post(f"/v1/cache/{ns}:invalidate", json={"prefix": "user/"})
        assert removed.json() == {"removed": 2}
        read = await service.http.post(f"/v1/cache/{ns}:mget", json={"keys": keys})
        assert [entry["found"] for entry in read.json()["entries"]] == [False, False, True, True]
        everything = await service.http.post(f"/v1/cache/{ns}:invalidate", json={"prefix": ""})
        assert everything.json() == {"removed": 2}

    async def test_an_invalidation_names_tags_or_a_prefix_not_both(
        self, service: Service, ns: str
    ) -> None:
        for body in ({}, {"tags": ["a"], "prefix": "p"}, {"tags": []}, {"tags": ["a b"]}):
            refused = await service.http.post(f"/v1/cache/{ns}:invalidate", json=body)
            assert refused.status_code == 422, body
            assert refused.headers["content-type"] == PROBLEM
        not_json = await service.http.post(
            f"/v1/cache/{ns}:invalidate",
            content=b"{",
            headers={"Content-Type": "application/json"},
        )
        assert not_json.status_code == 400
