"""Fenced locks over HTTP: contenders, a paused holder whose lease runs out, tokens, routing."""

from __future__ import annotations

import asyncio

import pytest

from outrigger.errors import Conflict
from outrigger.testing import unique
from tests.cache.http_support import PROBLEM, CacheApi, Service
from tests.cache.support import Ledger


class TestLocks(CacheApi):
    async def test_of_two_contenders_one_holds_until_it_releases(self, service: Service) -> None:
        url = f"/v1/locks/{unique('invoice')}"
        first = await service.http.post(url, json={"ttl_ms": 5000})
        assert first.status_code == 200
        held = first.json()
        assert set(held) == {"resource", "token", "fence", "ttl_ms"}
        second = await service.http.post(url, json={"ttl_ms": 5000})
        assert second.status_code == 409
        assert second.headers["content-type"] == PROBLEM
        assert 0 < second.json()["retry_after_ms"] <= 5000
        assert second.headers["retry-after"] == "5"
        released = await service.http.delete(url, headers={"Lock-Token": held["token"]})
        assert released.status_code == 204
        third = await service.http.post(url, json={"ttl_ms": 5000})
        assert third.status_code == 200
        assert third.json()["fence"] > held["fence"]

    async def test_a_waiting_contender_gets_the_lock_when_the_holder_releases(
        self, service: Service
    ) -> None:
        url = f"/v1/locks/{unique('job')}"
        held = (await service.http.post(url, json={"ttl_ms": 5000})).json()
        waiting = asyncio.create_task(
            service.http.post(url, json={"ttl_ms": 1000, "wait_ms": 3000})
        )
        await asyncio.sleep(0.1)
        await service.http.delete(url, headers={"Lock-Token": held["token"]})
        assert (await waiting).status_code == 200

    async def test_a_paused_holder_loses_the_lock_and_its_late_write_is_refused(
        self, service: Service
    ) -> None:
        resource = unique("ledger")
        url = f"/v1/locks/{resource}"
        ledger = Ledger()
        paused = (await service.http.post(url, json={"ttl_ms": 200})).json()
        await asyncio.sleep(0.3)  # the holder stalls (a GC pause, a slow disk) past its lease
        taker = await service.http.post(url, json={"ttl_ms": 5000})
        assert taker.status_code == 200
        ledger.write(taker.json()["fence"], "taker")

        renew = await service.http.post(
            f"{url}:renew", json={"token": paused["token"], "ttl_ms": 200}
        )
        assert renew.status_code == 409
        assert "stop the work it guarded" in renew.json()["detail"]
        check = await service.http.post(f"{url}:validate", json={"fence": paused["fence"]})
        assert check.status_code == 409
        assert check.json()["latest_fence"] == taker.json()["fence"]
        with pytest.raises(Conflict, match="is below"):
            ledger.write(paused["fence"], "paused holder")
        assert ledger.writes == [(taker.json()["fence"], "taker")]
        release = await service.http.delete(url, headers={"Lock-Token": paused["token"]})
        assert release.status_code == 409
        valid = await service.http.post(f"{url}:validate", json={"fence": taker.json()["fence"]})
        assert valid.status_code == 204

        [steal] = await service.audit.wait(1)
        assert steal.routing_key == "cache.lock_steal"
        assert steal.event.subject == resource
        metrics = (await service.http.get("/metrics")).text
        assert 'outrigger_cache_lock_losses_total{reason="taken_over"}' in metrics

    async def test_the_holder_renews_with_its_token_and_keeps_its_fence(
        self, service: Service
    ) -> None:
        url = f"/v1/locks/{unique('r')}"
        held = (await service.http.post(url, json={"ttl_ms": 200})).json()
        for _ in range(3):
            await asyncio.sleep(0.1)
            renewed = await service.http.post(
                f"{url}:renew", json={"token": held["token"], "ttl_ms": 200}
            )
            assert renewed.status_code == 200
            assert renewed.json()["fence"] == held["fence"]
        assert (await service.http.post(url, json={"ttl_ms": 100})).status_code == 409

    async def test_bad_lock_requests_are_4xx_problems(self, service: Service) -> None:
        url = f"/v1/locks/{unique('r')}"
        held = (await service.http.post(url, json={"ttl_ms": 5000})).json()
        cases = [
            ("POST", "/v1/locks/bad%20name", {"ttl_ms": 100}, {}, 422),
            ("POST", url, {"ttl_ms": 0}, {}, 422),
            ("POST", url, {"ttl_ms": 100, "wait_ms": 120_000}, {}, 422),
            ("POST", url, {}, {}, 422),
            ("POST", f"{url}:renew", {"token": "wrong", "ttl_ms": 100}, {}, 409),
            ("DELETE", url, None, {}, 422),
            ("DELETE", url, None, {"Lock-Token": "wrong"}, 409),
        ]
        for method, path, body, headers, status in cases:
            response = await service.http.request(method, path, json=body, headers=headers)
            assert response.status_code == status, (method, path, body, response.text)
            assert response.headers["content-type"] == PROBLEM
        still = await service.http.post(
            f"{url}:renew", json={"token": held["token"], "ttl_ms": 5000}
        )
        assert still.status_code == 200
