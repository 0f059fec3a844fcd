"""Stampede protection over HTTP: `?fill=lease` on a miss, fills with `Fill-Lease`, stale reads."""

from __future__ import annotations

import asyncio

import httpx

from tests.cache.http_support import PROBLEM, CacheApi, Service

CALLERS = 50


class TestFillLeases(CacheApi):
    async def test_of_fifty_concurrent_callers_exactly_one_fills_and_all_get_its_value(
        self, service: Service, ns: str
    ) -> None:
        url = f"/v1/cache/{ns}/report"
        loads = 0

        async def read_through() -> bytes:
            nonlocal loads
            found = await service.http.get(
                url, params={"fill": "lease", "lease_ms": 5000, "wait_ms": 5000}
            )
            if found.status_code == 200:
                return found.content
            assert found.status_code == 404
            lease = found.json()["lease"]
            assert found.headers["fill-lease"] == lease["token"]
            loads += 1
            await asyncio.sleep(0.2)  # the expensive load
            filled = await service.http.put(
                url, content=b"loaded once", headers={"Fill-Lease": lease["token"]}
            )
            assert filled.status_code == 200
            return b"loaded once"

        values = await asyncio.gather(*(read_through() for _ in range(CALLERS)))
        assert loads == 1
        assert values == [b"loaded once"] * CALLERS
        metrics = (await service.http.get("/metrics")).text
        assert f'outrigger_cache_fill_leases_total{{namespace="{ns}"}} 1.0' in metrics

    async def test_without_waiting_the_others_are_told_when_to_retry(
        self, service: Service, ns: str
    ) -> None:
        url = f"/v1/cache/{ns}/k"
        first = await service.http.get(url, params={"fill": "lease", "lease_ms": 3000})
        assert first.json()["lease"]["ttl_ms"] == 3000
        second = await service.http.get(url, params={"fill": "lease"})
        assert second.status_code == 404
        assert second.headers["content-type"] == PROBLEM
        assert "lease" not in second.json()
        assert 0 < second.json()["retry_after_ms"] <= 3000
        assert second.headers["retry-after"] == "3"
        assert "another caller is filling it" in second.json()["detail"]

    async def test_a_stale_entry_is_served_while_one_caller_refreshes_it(
        self, service: Service, ns: str
    ) -> None:
        url = f"/v1/cache/{ns}/k"
        await service.http.put(url, params={"ttl": 0.1, "swr": 5}, content=b"old")
        await asyncio.sleep(0.15)
        assert (await service.http.get(url)).status_code == 404  # plain reads want fresh data
        reads = await asyncio.gather(
            *(service.http.get(url, params={"fill": "lease"}) for _ in range(10))
        )
        assert all(read.status_code == 200 and read.content == b"old" for read in reads)
        assert all(read.headers["cache-status"] == "outrigger; hit; detail=stale" for read in reads)
        assert all(read.headers["cache-control"] == "max-age=0" for read in reads)
        refreshers = [read for read in reads if "fill-lease" in read.headers]
        assert len(refreshers) == 1
        token = refreshers[0].headers["fill-lease"]
        filled = await service.http.put(url, content=b"new", headers={"Fill-Lease": token})
        assert filled.status_code == 200
        fresh = await service.http.get(url)
        assert (fresh.content, "cache-status" in fresh.headers) == (b"new", False)

    async def test_a_fill_without_the_lease_is_refused_and_stores_nothing(
        self, service: Service, ns: str
    ) -> None:
        url = f"/v1/cache/{ns}/k"
        refused = await service.http.put(url, content=b"v", headers={"Fill-Lease": "not-a-lease"})
        assert refused.status_code == 409
        assert "does not hold its fill lease" in refused.json()["detail"]
        lease = (await service.http.get(url, params={"fill": "lease"})).json()["lease"]
        conditional = await service.http.put(
            url, content=b"v", headers={"Fill-Lease": lease["token"], "If-Match": '"v1"'}
        )
        assert conditional.status_code == 412  # a key being filled has no fresh version
        assert conditional.json()["current_version"] is None
        await service.http.put(url, content=b"written meanwhile")
        voided = await service.http.put(url, content=b"v", headers={"Fill-Lease": lease["token"]})
        assert voided.status_code == 409
        assert (await service.http.get(url)).content == b"written meanwhile"

    async def test_a_lease_predating_an_invalidation_of_its_tag_cannot_fill(
        self, service: Service, ns: str
    ) -> None:
        url = f"/v1/cache/{ns}/k"
        lease = (await service.http.get(url, params={"fill": "lease"})).json()["lease"]
        await service.http.post(f"/v1/cache/{ns}:invalidate", json={"tags": ["stream:s"]})
        outdated: httpx.Response = await service.http.put(
            url,
            params={"tags": "stream:s"},
            content=b"built before the change",
            headers={"Fill-Lease": lease["token"]},
        )
        assert outdated.status_code == 409
        assert "was invalidated after the fill lease was granted" in outdated.json()["detail"]
        assert (await service.http.get(url)).status_code == 404
