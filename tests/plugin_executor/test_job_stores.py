"""The `JobStore` contract on the memory store and on the cache service (served for real, on
real Redis), and what only the cache one does: a cache that stops is `JobStateUnavailable`,
never a miss; a minted token is renewed; an entry that is no job is not taken for one."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError

from outrigger.clients import CacheClient
from outrigger.errors import SettingsError
from outrigger.testing import free_port
from services.plugin_executor.adapters.job_cache import CacheJobStore
from services.plugin_executor.adapters.job_memory import MemoryJobStore
from services.plugin_executor.app import build_job_store
from services.plugin_executor.domain import JobStateUnavailable
from tests.plugin_executor.api_support import plugin_settings
from tests.plugin_executor.job_contract import JobStoreContract, a_job
from tests.plugin_executor.job_support import cache_service, cache_token, fresh_policies

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _policies() -> Any:
    fresh_policies()  # neither a breaker a stopped cache opened, nor a policy a test registered,
    yield  # outlives its test
    fresh_policies()


class TestMemoryJobStore(JobStoreContract):
    async def make_adapter(self, **options: Any) -> MemoryJobStore:
        return MemoryJobStore(ttl_seconds=options.get("ttl_seconds", 60.0))


@pytest.mark.redis
class TestCacheJobStore(JobStoreContract):
    @pytest.fixture(autouse=True)
    async def _cache(self, redis_url: str) -> AsyncIterator[None]:
        async with cache_service(redis_url) as url:
            self.url = url
            yield

    async def make_adapter(self, **options: Any) -> CacheJobStore:
        return CacheJobStore(self.url, cache_token(), ttl_seconds=options.get("ttl_seconds", 60.0))

    async def test_an_entry_that_is_no_job_is_unavailable_not_a_job(
        self, adapter: CacheJobStore
    ) -> None:
        job = a_job()
        async with CacheClient(self.url, token=cache_token()) as cache:
            await cache.put("jobs", job.id, b'{"not": "a job"}', content_type="application/json")
        with pytest.raises(JobStateUnavailable, match="no job"):
            await adapter.get(job.id)

    async def test_a_minted_token_is_minted_again_as_it_ages(self) -> None:
        minted: list[str] = []

        def mint() -> str:
            minted.append(token := cache_token())
            return token

        store = CacheJobStore(self.url, mint, ttl_seconds=60, renew_seconds=0.0)
        try:
            job = a_job()
            await store.create(job)
            await store.update(job.running(None))
            assert await store.get(job.id) is not None
        finally:
            await store.close()
        assert len(minted) == 3

    async def test_a_refused_token_is_unavailable(self) -> None:
        store = CacheJobStore(self.url, "not-a-token", ttl_seconds=60)
        try:
            with pytest.raises(JobStateUnavailable, match="cache service"):
                await store.get(a_job().id)
        finally:
            await store.close()


@pytest.mark.redis
async def test_a_stopped_cache_is_unavailable_never_a_miss(redis_url: str) -> None:
    job = a_job()
    stack = contextlib.AsyncExitStack()
    url = await stack.enter_async_context(cache_service(redis_url))
    store = CacheJobStore(url, cache_token(), ttl_seconds=60, timeout=1.0)
    try:
        await store.create(job)
        await store.check()
        await stack.aclose()  # the cache service stops
        with pytest.raises(JobStateUnavailable, match="cannot read"):
            await store.get(job.id)
        with pytest.raises(JobStateUnavailable, match="cannot read"):
            await store.check()
        with pytest.raises(JobStateUnavailable, match="cannot write"):
            await store.update(job.running(None))
    finally:
        await store.close()
        await stack.aclose()


async def test_nothing_listening_is_unavailable() -> None:
    store = CacheJobStore(f"http://127.0.0.1:{free_port()}", "t", ttl_seconds=60, timeout=1.0)
    try:
        with pytest.raises(JobStateUnavailable, match="cannot keep"):
            await store.create(a_job())
    finally:
        await store.close()


def test_the_cache_url_is_the_cache_service_or_memory(tmp_path: Path) -> None:
    assert plugin_settings(tmp_path).cache_url == "memory://"
    given = plugin_settings(tmp_path, cache_url="http://cache:8003/")
    assert given.cache_url == "http://cache:8003"
    with pytest.raises(ValidationError, match="the cache service"):
        plugin_settings(tmp_path, cache_url="redis://127.0.0.1:6379")


def test_the_store_follows_the_cache_url_and_needs_a_way_to_a_token(tmp_path: Path) -> None:
    assert isinstance(build_job_store(plugin_settings(tmp_path)), MemoryJobStore)
    over_http = build_job_store(plugin_settings(tmp_path, cache_url="http://cache:8003"))
    assert isinstance(over_http, CacheJobStore)
    public_key = tmp_path / "public.pem"
    public_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    verify_only = plugin_settings(
        tmp_path, cache_url="http://cache:8003", jwt_secret=None, jwt_public_key_file=public_key
    )
    with pytest.raises(SettingsError, match="OUTRIGGER_PLUGINS_CACHE_TOKEN"):
        build_job_store(verify_only)
    given = verify_only.model_copy(update={"plugins_cache_token": SecretStr("a-token")})
    assert isinstance(build_job_store(given), CacheJobStore)
