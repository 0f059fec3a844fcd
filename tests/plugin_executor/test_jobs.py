"""Jobs: queued over HTTP or on the bus, run by the consumer, their state kept in the cache service,
their progress and results published. Most tests run on the real servers (RabbitMQ, and the cache
service served for real on Redis) with the in-process test double as the sandbox; one goes
through the real sandbox. The ones about the API's own answers use the embedded backends."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from outrigger.bus import CloudEvent
from outrigger.testing import audit_inbox, free_port, unique
from services.plugin_executor.adapters.pool import WorkerPool
from tests.plugin_executor.api_support import ADMIN, EXAMPLES, PROBLEM, RUN, sample
from tests.plugin_executor.job_support import (
    Backends,
    Inbox,
    backends,
    cache_service,
    executor,
    fresh_policies,
    jobs_plugin_folder,
    until_done,
)
from tests.plugin_executor.sandbox_support import uid_base, work_root

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _policies() -> Any:
    fresh_policies()  # a breaker another test opened (a stopped cache) starts closed
    yield
    fresh_policies()


@pytest.fixture
async def real(amqp_url: str, redis_url: str) -> AsyncIterator[Backends]:
    """RabbitMQ, and the cache service served for real on Redis."""
    async with cache_service(redis_url) as cache_url, backends(amqp_url, cache_url) as found:
        yield found


@pytest.fixture
async def embedded() -> AsyncIterator[Backends]:
    """The in-memory bus and store."""
    async with backends(f"memory://{unique('jobs')}", "memory://") as found:
        yield found


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    return jobs_plugin_folder(tmp_path)


def a_job(plugin: str, payload: dict[str, Any], job: str | None = None) -> CloudEvent:
    """A job as a backend sends it (for `plugin`, which its routing key names)."""
    return CloudEvent(
        id=job or str(uuid.uuid4()), source="tests/backend", type="run", data={"input": payload}
    )


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_job_over_http_runs_and_get_gives_its_result(
    real: Backends, plugin_dir: Path
) -> None:
    async with executor(real.settings(plugin_dir)) as service:
        answer = await service.http.post(
            "/v1/jobs", json={"plugin": "text-stats", "input": {"text": "a b a"}}
        )
        assert answer.status_code == 202, answer.text
        queued = answer.json()
        assert answer.headers["Location"] == f"/v1/jobs/{queued['id']}"
        assert queued["state"] == "queued"
        assert (queued["result"], queued["reason"], queued["usage"]) == (None, None, None)
        done = await until_done(service.http, queued["id"])
    assert done["reason"] == "ok"
    assert done["result"]["words"] == 3
    assert done["version"] == "1.0.0"
    assert done["usage"]["wall_s"] >= 0
    assert done["created_at"] == queued["created_at"]
    [result] = await real.results.wait_about(queued["id"])
    assert result.routing_key == "result.text-stats.ok"
    assert result.event.data["result"] == done["result"]


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_progress_and_the_result_go_to_the_jobs_channel(
    real: Backends, plugin_dir: Path
) -> None:
    records = [{"a": n, "b": n} for n in range(5000)]
    async with executor(real.settings(plugin_dir)) as service:
        answer = await service.http.post(
            "/v1/jobs",
            json={"plugin": "json-transform", "input": {"records": records, "drop": ["b"]}},
        )
        job = answer.json()["id"]
        done = await until_done(service.http, job)
    notices = await real.notices.wait_about(job, 2)
    await asyncio.sleep(0.2)
    notices = real.notices.about(job)
    kinds = [notice.event.type for notice in notices]
    assert kinds[-1] == "result"
    assert "progress" in kinds
    assert all(kind == "progress" for kind in kinds[:-1])
    progress = [n.event.data["progress"] for n in notices if n.event.type == "progress"]
    assert progress == sorted(progress)
    assert notices[-1].event.data["result"] == done["result"]
    assert done["progress"]["progress"] == progress[-1]


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_the_same_idempotency_key_gives_the_same_job_once(
    real: Backends, plugin_dir: Path
) -> None:
    body = {"plugin": "text-stats", "input": {"text": "once"}}
    async with executor(real.settings(plugin_dir)) as service:
        first = await service.http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k 1"})
        again = await service.http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k 1"})
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json()["id"] == first.json()["id"]
        await until_done(service.http, first.json()["id"])
        after = await service.http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k 1"})
        other = await service.http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k 2"})
        await asyncio.sleep(0.3)
        assert after.json()["id"] == first.json()["id"]
        assert after.json()["state"] == "done", "a retry after the run sees the result"
        assert other.json()["id"] != first.json()["id"]
        await until_done(service.http, other.json()["id"])
        assert len(service.sandbox.runs) == 2
        someone = service.as_(RUN, subject="someone-else")
        theirs = await service.http.post(
            "/v1/jobs", json=body, headers={"Idempotency-Key": "k 1", **someone}
        )
        assert theirs.json()["id"] != first.json()["id"], "keys are the caller's own"
    assert len(real.results.about(first.json()["id"])) == 1


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_used_key_with_another_request_is_a_422_and_runs_nothing(
    real: Backends, plugin_dir: Path
) -> None:
    key = {"Idempotency-Key": "order-7"}
    async with executor(real.settings(plugin_dir)) as service:
        first = await service.http.post(
            "/v1/jobs", json={"plugin": "text-stats", "input": {"text": "a"}}, headers=key
        )
        reused = await service.http.post(
            "/v1/jobs", json={"plugin": "text-stats", "input": {"text": "b"}}, headers=key
        )
        await until_done(service.http, first.json()["id"])
        assert len(service.sandbox.runs) == 1
    assert reused.status_code == 422
    assert reused.headers["Content-Type"] == PROBLEM
    problem = reused.json()
    assert problem["type"].endswith("/idempotency-key-reused")
    assert problem["title"] == "Idempotency-Key reused with another request"
    assert first.json()["id"] in problem["detail"]


async def test_bad_input_is_a_422_at_once_and_an_unknown_plugin_a_404(
    embedded: Backends, plugin_dir: Path
) -> None:
    async with executor(embedded.settings(plugin_dir)) as service:
        bad = await service.http.post("/v1/jobs", json={"plugin": "text-stats", "input": {}})
        unknown = await service.http.post("/v1/jobs", json={"plugin": "nope", "input": {}})
        long_key = await service.http.post(
            "/v1/jobs",
            json={"plugin": "text-stats", "input": {"text": "a"}},
            headers={"Idempotency-Key": "k" * 256},
        )
        await asyncio.sleep(0.1)
        assert service.sandbox.runs == []
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "text"
    assert unknown.status_code == 404
    assert long_key.status_code == 422
    assert embedded.results.deliveries == []


async def test_a_job_is_its_owners_and_plugins_admin_sees_every_one(
    embedded: Backends, plugin_dir: Path
) -> None:
    async with executor(embedded.settings(plugin_dir)) as service:
        answer = await service.http.post(
            "/v1/jobs", json={"plugin": "text-stats", "input": {"text": "mine"}}
        )
        job = answer.json()["id"]
        await until_done(service.http, job)
        other = await service.http.get(f"/v1/jobs/{job}", headers=service.as_(RUN, subject="eve"))
        admin = await service.http.get(
            f"/v1/jobs/{job}", headers=service.as_(ADMIN, RUN, subject="root")
        )
        never = await service.http.get(f"/v1/jobs/{uuid.uuid4()}")
        no_scope = await service.http.get(f"/v1/jobs/{job}", headers=service.as_("cache:read"))
    assert other.status_code == 404
    assert admin.status_code == 200
    assert admin.json()["id"] == job
    assert never.status_code == 404
    assert no_scope.status_code == 403


async def test_a_job_is_counted_and_audited_as_a_run_is(
    embedded: Backends, plugin_dir: Path
) -> None:
    before = sample("outrigger_plugins_runs_total", plugin="boom", version="2.1.0", reason="error")
    async with executor(embedded.settings(plugin_dir)) as service:
        audit = await audit_inbox(embedded.bus, "plugin-executor")
        answer = await service.http.post("/v1/jobs", json={"plugin": "boom", "input": {}})
        done = await until_done(service.http, answer.json()["id"])
        [record] = await audit.wait(1)
    assert done["reason"] == "error"
    assert "the plugin gave up" in done["detail"]
    assert record.routing_key == "plugin-executor.run"
    assert record.event.data["actor"] == "tester"
    after = sample("outrigger_plugins_runs_total", plugin="boom", version="2.1.0", reason="error")
    assert after == before + 1


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_bus_job_with_reply_to_gets_the_result_with_its_correlation_id(
    real: Backends, plugin_dir: Path
) -> None:
    replies = Inbox()
    reply_queue = real.names.queue("test.jobs.replies.")
    await real.bus.subscribe(reply_queue, [], replies)
    async with executor(real.settings(plugin_dir)) as service:
        sent = a_job("text-stats", {"text": "x y"}, unique("order-7."))
        await real.bus.publish(
            real.exchange, "run.text-stats", sent, reply_to=reply_queue, correlation_id="ask-1"
        )
        [reply] = await replies.wait_about(sent.id)
        mine = await service.http.get(f"/v1/jobs/{sent.id}")
        admin = await service.http.get(f"/v1/jobs/{sent.id}", headers=service.as_(ADMIN, RUN))
    assert reply.correlation_id == "ask-1"
    assert reply.event.data["state"] == "done"
    assert reply.event.data["reason"] == "ok"
    assert reply.event.data["result"]["words"] == 2
    assert mine.status_code == 404, "a bus job is owned by bus:<its source>"
    assert admin.json()["reason"] == "ok"
    [result] = await real.results.wait_about(sent.id)
    assert result.routing_key == "result.text-stats.ok"


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_an_unknown_plugin_or_bad_input_from_the_bus_is_an_invalid_input_result(
    real: Backends, plugin_dir: Path
) -> None:
    replies = Inbox()
    reply_queue = real.names.queue("test.jobs.replies.")
    await real.bus.subscribe(reply_queue, [], replies)
    async with executor(real.settings(plugin_dir)) as service:
        unknown = a_job("nope", {})
        bad = a_job("text-stats", {"txt": 1})
        await real.bus.publish(real.exchange, "run.nope", unknown, reply_to=reply_queue)
        await real.bus.publish(real.exchange, "run.text-stats", bad)
        [unknown_result] = await real.results.wait_about(unknown.id)
        [bad_result] = await real.results.wait_about(bad.id)
        [reply] = await replies.wait_about(unknown.id)
        kept = await service.http.get(f"/v1/jobs/{bad.id}", headers=service.as_(ADMIN, RUN))
    assert unknown_result.routing_key == "result.nope.invalid_input"
    assert "no plugin named 'nope'" in unknown_result.event.data["detail"]
    assert bad_result.routing_key == "result.text-stats.invalid_input"
    assert "text" in bad_result.event.data["detail"]
    assert reply.correlation_id == unknown.id
    assert kept.json()["reason"] == "invalid_input"
    assert service.sandbox.runs == []


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_plugin_error_is_a_result_and_never_retried(
    real: Backends, plugin_dir: Path
) -> None:
    async with executor(real.settings(plugin_dir)) as service:
        await real.bus.publish(real.exchange, "run.boom", sent := a_job("boom", {}))
        [result] = await real.results.wait_about(sent.id)
        await asyncio.sleep(1.5)  # past the first retry's delay
        assert len(service.sandbox.runs) == 1
    assert result.routing_key == "result.boom.error"
    assert len(real.results.about(sent.id)) == 1


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_while_the_cache_is_down_jobs_run_and_publish_and_get_is_503(
    amqp_url: str, redis_url: str, plugin_dir: Path
) -> None:
    stack = contextlib.AsyncExitStack()
    cache_url = await stack.enter_async_context(cache_service(redis_url))
    async with (
        backends(amqp_url, cache_url) as found,
        executor(found.settings(plugin_dir)) as service,
    ):
        assert (await service.http.get("/readyz")).json()["status"] == "ready"
        await stack.aclose()  # the cache service stops
        readiness = (await service.http.get("/readyz")).json()
        assert (readiness["status"], readiness["checks"]["sandbox"]) == ("degraded", "ok")
        assert readiness["checks"]["job-state"] != "ok"
        answer = await service.http.post(
            "/v1/jobs", json={"plugin": "text-stats", "input": {"text": "still"}}
        )
        assert answer.status_code == 202
        job = answer.json()["id"]
        [result] = await found.results.wait_about(job)
        [notice] = await found.notices.wait_about(job)
        state = await service.http.get(f"/v1/jobs/{job}")
    assert result.event.data["reason"] == "ok"
    assert notice.event.type == "result"
    assert state.status_code == 503
    assert state.headers["Content-Type"] == PROBLEM
    assert "Retry-After" in state.headers
    assert state.json()["type"].endswith("/job-state-unavailable")
    assert sample("outrigger_plugins_job_store_failures_total", operation="update") >= 1


@pytest.mark.rabbitmq
async def test_with_the_broker_down_a_job_is_refused_503_and_nothing_is_kept(
    plugin_dir: Path,
) -> None:
    async with backends(f"memory://{unique('jobs')}", "memory://") as found:
        settings = found.settings(
            plugin_dir, amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/"
        )
        async with executor(settings) as service:
            body = {"plugin": "text-stats", "input": {"text": "nowhere"}}
            key = {"Idempotency-Key": "retry-me"}
            refused = await service.http.post("/v1/jobs", json=body, headers=key)
            assert refused.status_code == 503
            assert "Retry-After" in refused.headers
            again = await service.http.post("/v1/jobs", json=body, headers=key)
            assert again.status_code == 503, "the first attempt left no job behind"


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_job_cut_by_shutdown_goes_back_and_another_replica_finishes_it(
    real: Backends, plugin_dir: Path
) -> None:
    settings = real.settings(plugin_dir, shutdown_grace_seconds=0.3)
    requeued_before = sample("outrigger_plugins_jobs_requeued_total", why="shutdown")
    first_stack = contextlib.AsyncExitStack()
    first = await first_stack.enter_async_context(executor(settings))
    try:
        answer = await first.http.post(
            "/v1/jobs", json={"plugin": "sleepy", "input": {"seconds": 2}}
        )
        job = answer.json()["id"]
        for _ in range(250):
            state = (await first.http.get(f"/v1/jobs/{job}")).json()["state"]
            if state == "running" and first.sandbox.runs:
                break
            await asyncio.sleep(0.02)
        assert first.sandbox.runs, "the first replica did not start the job"
        async with executor(settings) as second:
            await first_stack.aclose()  # SIGTERM: its lifespan ends mid-run
            requeued = (await second.http.get(f"/v1/jobs/{job}")).json()["state"]
            done = await until_done(second.http, job, within=20)
    finally:
        await first_stack.aclose()
    cut, finisher = first, second
    assert requeued in ("queued", "running")
    assert done["reason"] == "ok"
    assert done["result"] == {"slept": 2}
    assert len(cut.sandbox.runs) == 1
    assert len(finisher.sandbox.runs) == 1
    await asyncio.sleep(0.2)
    reasons = [result.event.data["reason"] for result in real.results.about(job)]
    assert reasons == ["ok"], "a cut run is no result"
    requeued_after = sample("outrigger_plugins_jobs_requeued_total", why="shutdown")
    assert requeued_after == requeued_before + 1
    assert sample("outrigger_plugins_jobs_in_flight") == 0


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_job_runs_in_the_real_sandbox(real: Backends) -> None:
    base = uid_base()
    with work_root() as root:
        pool = WorkerPool(work_dir=root / f"pool-{base}", uid_base=base, size=1)
        settings = real.settings(EXAMPLES)
        async with executor(settings, sandbox=pool) as service:
            answer = await service.http.post(
                "/v1/jobs", json={"plugin": "text-stats", "input": {"text": "the cat the hat"}}
            )
            done = await until_done(service.http, answer.json()["id"], within=30)
    assert done["reason"] == "ok", done["detail"]
    assert done["result"]["words"] == 4
    assert done["usage"]["max_rss_kib"] > 0


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_bus_job_sent_again_once_done_is_answered_again_not_run_again(
    real: Backends, plugin_dir: Path
) -> None:
    replies = Inbox()
    reply_queue = real.names.queue("test.jobs.replies.")
    await real.bus.subscribe(reply_queue, [], replies, dedupe=False)
    async with executor(real.settings(plugin_dir)) as service:
        sent = a_job("text-stats", {"text": "twice"})
        await real.bus.publish(real.exchange, "run.text-stats", sent, reply_to=reply_queue)
        await replies.wait_about(sent.id)
        await real.bus.publish(real.exchange, "run.text-stats", sent, reply_to=reply_queue)
        first, second = await replies.wait_about(sent.id, 2)
        assert len(service.sandbox.runs) == 1
    assert first.event.data == second.event.data
