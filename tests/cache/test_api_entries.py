"""One entry over HTTP: read, write, delete, conditions, freshness, tags, keys and routing."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from tests.cache.http_support import PROBLEM, CacheApi, Service


def entry(ns: str, key: str) -> str:
    return f"/v1/cache/{ns}/{quote(key, safe='/')}"


class TestEntries(CacheApi):
    async def test_a_stored_value_comes_back_with_its_type_version_and_freshness(
        self, service: Service, ns: str
    ) -> None:
        body = b'{"name": "Ada"}'
        stored = await service.http.put(
            entry(ns, "user/42"),
            params={"ttl": 120, "tags": "stream:user-42,users"},
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert stored.status_code == 200
        version = stored.json()["version"]
        assert stored.headers["etag"] == f'"{version}"'
        assert stored.json()["ttl_ms"] == 120_000
        assert stored.json()["tags"] == ["stream:user-42", "users"]

        read = await service.http.get(entry(ns, "user/42"))
        assert read.status_code == 200
        assert read.content == body
        assert read.headers["content-type"] == "application/json"
        assert read.headers["etag"] == f'"{version}"'
        assert read.headers["cache-control"] in ("max-age=119", "max-age=120")
        assert read.headers["cache-tag"] == "stream:user-42,users"

    async def test_the_namespace_default_ttl_applies_and_an_entry_expires(
        self, service: Service, ns: str
    ) -> None:
        default = await service.http.put(entry(ns, "d"), content=b"v")
        assert default.json()["ttl_ms"] == 60_000
        await service.http.put(entry(ns, "brief"), params={"ttl": 0.2}, content=b"v")
        fresh = await service.http.get(entry(ns, "brief"))
        assert fresh.headers["cache-control"] == "max-age=0"
        await asyncio.sleep(0.3)
        gone = await service.http.get(entry(ns, "brief"))
        assert gone.status_code == 404
        assert gone.headers["content-type"] == PROBLEM
        assert gone.json()["key"] == "brief"
        assert "expired" in gone.json()["detail"]

    async def test_if_none_match_answers_304_while_the_version_is_current(
        self, service: Service, ns: str
    ) -> None:
        version = (await service.http.put(entry(ns, "k"), content=b"v1")).json()["version"]
        for header in (f'"{version}"', f'W/"{version}"', f'"other", "{version}"', "*"):
            same = await service.http.get(entry(ns, "k"), headers={"If-None-Match": header})
            assert same.status_code == 304, header
            assert same.content == b""
            assert same.headers["etag"] == f'"{version}"'
        await service.http.put(entry(ns, "k"), content=b"v2")
        changed = await service.http.get(entry(ns, "k"), headers={"If-None-Match": f'"{version}"'})
        assert changed.status_code == 200
        assert changed.content == b"v2"

    async def test_if_match_compares_and_sets_and_refuses_a_stale_version(
        self, service: Service, ns: str
    ) -> None:
        first = (await service.http.put(entry(ns, "k"), content=b"v1")).json()["version"]
        second = await service.http.put(
            entry(ns, "k"), content=b"v2", headers={"If-Match": f'"{first}"'}
        )
        assert second.status_code == 200
        stale = await service.http.put(
            entry(ns, "k"), content=b"v3", headers={"If-Match": f'"{first}"'}
        )
        assert stale.status_code == 412
        assert stale.headers["content-type"] == PROBLEM
        assert stale.json()["current_version"] == second.json()["version"]
        assert "read it again" in stale.json()["detail"]
        assert (await service.http.get(entry(ns, "k"))).content == b"v2"
        weak = await service.http.put(
            entry(ns, "k"), content=b"v4", headers={"If-Match": f'W/"{second.json()["version"]}"'}
        )
        assert weak.status_code == 412

    async def test_if_none_match_star_stores_only_when_absent(
        self, service: Service, ns: str
    ) -> None:
        star = {"If-None-Match": "*"}
        created = await service.http.put(entry(ns, "k"), content=b"first", headers=star)
        assert created.status_code == 200
        again = await service.http.put(entry(ns, "k"), content=b"second", headers=star)
        assert again.status_code == 412
        assert again.json()["current_version"] == created.json()["version"]
        assert (await service.http.get(entry(ns, "k"))).content == b"first"

    async def test_if_match_with_if_none_match_star_never_holds(
        self, service: Service, ns: str
    ) -> None:
        version = (await service.http.put(entry(ns, "k"), content=b"v1")).json()["version"]
        both = {"If-Match": f'"{version}"', "If-None-Match": "*"}
        refused = await service.http.put(entry(ns, "k"), content=b"v2", headers=both)
        assert refused.status_code == 412
        assert refused.json()["current_version"] == version
        assert "never hold together" in refused.json()["detail"]
        assert (await service.http.get(entry(ns, "k"))).content == b"v1"

    async def test_delete_removes_once_is_conditional_and_is_audited(
        self, service: Service, ns: str
    ) -> None:
        version = (await service.http.put(entry(ns, "k"), content=b"v")).json()["version"]
        refused = await service.http.delete(entry(ns, "k"), headers={"If-Match": '"nope"'})
        assert refused.status_code == 412
        deleted = await service.http.delete(entry(ns, "k"), headers={"If-Match": f'"{version}"'})
        assert deleted.status_code == 204
        assert (await service.http.get(entry(ns, "k"))).status_code == 404
        twice = await service.http.delete(entry(ns, "k"))
        assert twice.status_code == 404
        [record] = await service.audit.wait(1)
        assert record.routing_key == "cache.delete"
        assert record.event.subject == f"{ns}/k"
        assert record.event.data["actor"] == "tester"

    async def test_keys_may_hold_slashes_unicode_and_url_specials(
        self, service: Service, ns: str
    ) -> None:
        for key in ("a/b/c", "ünï/cødé", "q?x=1#frag", "100%", "trailing/"):
            put = await service.http.put(entry(ns, key), content=key.encode())
            assert put.status_code == 200, key
            assert put.json()["key"] == key
            assert (await service.http.get(entry(ns, key))).content == key.encode()

    async def test_a_raw_value_over_the_limit_is_413_and_changes_nothing(
        self, make_service: object, ns: str
    ) -> None:
        async with make_service(cache_max_value_bytes=1024) as service:  # type: ignore[operator]
            await service.http.put(entry(ns, "k"), content=b"small")
            too_big = await service.http.put(entry(ns, "k"), content=b"x" * 1025)
            assert too_big.status_code == 413
            assert too_big.json()["max_value_bytes"] == 1024
            assert "at most 1,024 bytes" in too_big.json()["detail"]
            assert (await service.http.get(entry(ns, "k"))).content == b"small"

            async def chunks() -> object:
                for _ in range(3):
                    yield b"x" * 512

            streamed = await service.http.put(entry(ns, "k"), content=chunks())
            assert streamed.status_code == 413
            assert (await service.http.get(entry(ns, "k"))).content == b"small"

    async def test_bad_input_is_a_4xx_problem_that_changes_nothing(
        self, service: Service, ns: str
    ) -> None:
        await service.http.put(entry(ns, "k"), content=b"kept", params={"tags": "t"})
        long_key = "k" * 513
        refused = [
            ("PUT", entry("Bad_NS", "k"), {}, {}, "namespace 'Bad_NS' must be 1-64"),
            ("GET", entry("Bad_NS", "k"), {}, {}, "namespace 'Bad_NS' must be 1-64"),
            ("PUT", entry(ns, long_key), {}, {}, "is 513 characters"),
            ("GET", entry(ns, long_key), {}, {}, "is 513 characters"),
            ("PUT", entry(ns, "k"), {"ttl": "soon"}, {}, "ttl"),
            ("PUT", entry(ns, "k"), {"ttl": "-1"}, {}, "ttl"),
            ("PUT", entry(ns, "k"), {"ttl": "0.0001"}, {}, "ttl: Input should be greater"),
            ("PUT", entry(ns, "k"), {"ttl": "7200"}, {}, "ttl 7200000 ms is outside"),
            ("PUT", entry(ns, "k"), {"ttl": "inf"}, {}, "ttl"),
            ("PUT", entry(ns, "k"), {"ttl": "nan"}, {}, "ttl"),
            ("PUT", entry(ns, "k"), {"ttl": "1e308"}, {}, "ttl: Input should be less than"),
            ("PUT", entry(ns, "k"), {"swr": "1e308"}, {}, "swr: Input should be less than"),
            ("GET", entry(ns, "k"), {"fill": "lease", "wait_ms": "1e308"}, {}, "wait_ms"),
            ("PUT", entry(ns, "k"), {"tags": "a b"}, {}, "tag 'a b' must be"),
            ("PUT", entry(ns, "k"), {}, {"If-Match": "*"}, "exactly one ETag"),
            ("PUT", entry(ns, "k"), {}, {"If-None-Match": '"v"'}, "only If-None-Match: *"),
            ("PUT", entry(ns, "k"), {}, {"Content-Type": "nonsense"}, "is not type/subtype"),
            ("GET", entry(ns, "k"), {"fill": "always"}, {}, "fill"),
            ("GET", entry(ns, "k"), {"fill": "lease", "lease_ms": "0"}, {}, "lease_ms"),
        ]
        for method, url, params, headers, says in refused:
            response = await service.http.request(
                method,
                url,
                params=params,
                headers=headers,
                content=b"new" if method == "PUT" else None,
            )
            assert response.status_code == 422, (method, url, params, headers)
            assert response.headers["content-type"] == PROBLEM
            assert says in response.json()["detail"], response.json()["detail"]
        kept = await service.http.get(entry(ns, "k"))
        assert (kept.content, kept.headers["cache-tag"]) == (b"kept", "t")

    async def test_every_route_needs_a_token_with_its_scope(
        self, service: Service, ns: str
    ) -> None:
        anonymous = {"Authorization": ""}
        for method, url in [
            ("GET", entry(ns, "k")),
            ("PUT", entry(ns, "k")),
            ("DELETE", entry(ns, "k")),
            ("POST", f"/v1/cache/{ns}:mget"),
            ("POST", "/v1/locks/r"),
        ]:
            response = await service.http.request(method, url, headers=anonymous)
            assert response.status_code == 401, (method, url)
            assert response.headers["content-type"] == PROBLEM
        reader, writer = service.as_("cache:read"), service.as_("cache:write")
        assert (await service.http.put(entry(ns, "k"), headers=reader)).status_code == 403
        assert (await service.http.delete(entry(ns, "k"), headers=reader)).status_code == 403
        forbidden = await service.http.get(entry(ns, "k"), headers=writer)
        assert forbidden.status_code == 403
        assert forbidden.json()["required_scope"] == "cache:read"
        locks = await service.http.post("/v1/locks/r", json={"ttl_ms": 100}, headers=writer)
        assert locks.status_code == 403
        assert (await service.http.get(entry(ns, "k"), headers=reader)).status_code == 404

    async def test_colon_actions_and_entry_paths_route_where_they_should(
        self, service: Service, ns: str
    ) -> None:
        await service.http.put(entry(ns, "x:mget"), content=b"a key, not an action")
        batch = await service.http.post(f"/v1/cache/{ns}:mget", json={"keys": ["x:mget"]})
        assert batch.status_code == 200
        assert batch.json()["entries"][0]["value"] == "a key, not an action"
        assert (await service.http.get(f"/v1/cache/{ns}:mget")).status_code == 405
        assert (await service.http.get(entry(ns, "x:mget"))).content == b"a key, not an action"

    async def test_reads_are_counted_per_namespace_under_their_route_template(
        self, service: Service, ns: str
    ) -> None:
        await service.http.put(entry(ns, "k"), content=b"v")
        await service.http.get(entry(ns, "k"))
        await service.http.get(entry(ns, "missing"))
        metrics = (await service.http.get("/metrics")).text
        assert f'outrigger_cache_hits_total{{namespace="{ns}"}} 1.0' in metrics
        assert f'outrigger_cache_misses_total{{namespace="{ns}"}} 1.0' in metrics
        assert 'route="/v1/cache/{namespace}/{key:path}"' in metrics

    async def test_the_openapi_document_describes_reads_and_their_lease(
        self, service: Service
    ) -> None:
        document = (await service.http.get("/openapi.json")).json()
        read = document["paths"]["/v1/cache/{namespace}/{key}"]["get"]
        names = {parameter["name"] for parameter in read["parameters"]}
        assert {"namespace", "key", "fill", "lease_ms", "wait_ms", "If-None-Match"} <= names
        assert {"200", "304", "404"} <= set(read["responses"])
        assert "lease" in str(read["responses"]["404"])
        assert set(document["paths"]) >= {
            "/v1/cache/{namespace}:mget",
            "/v1/cache/{namespace}:mset",
            "/v1/cache/{namespace}:invalidate",
            "/v1/locks/{resource}",
            "/v1/locks/{resource}:renew",
        }
