"""What the jobs tests share: the cache service served for real (real Redis, its own key prefix,
deleted afterwards) for the plugin executor to keep jobs' state in; exchanges and queues of a
test's own on the shared RabbitMQ (deleted afterwards) with the test's bus listening to results
and notifications; the plugin executor served for real on them; a plugin folder with a plugin
that sleeps and one that raises."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from redis.asyncio import Redis

from outrigger.bus import Ack, connect_bus
from outrigger.resilience import policies
from outrigger.testing import bearer, serving, unique
from outrigger.testing.broker import Declared
from services.cache.app import build_app as build_cache
from services.cache.settings import CacheSettings
from services.plugin_executor.app import build_app as build_executor
from tests.plugin_executor.api_support import plugin_folder, plugin_settings
from tests.plugin_executor.fake_sandbox import InProcessSandbox

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from outrigger.bus import Delivery, MessageBus
    from services.plugin_executor.domain import Sandbox
    from services.plugin_executor.settings import PluginSettings

SECRET = "plugin-executor-test-secret-of-32-bytes!"  # the executor's too (api_support)


@contextlib.asynccontextmanager
async def cache_service(redis_url: str, **overrides: Any) -> AsyncIterator[str]:
    """The cache service on real Redis under a key prefix of its own, served on a free port;
    yields its URL. Its keys are deleted when it stops."""
    settings = CacheSettings(
        jwt_secret=SECRET,
        redis_url=redis_url,
        amqp_url=f"memory://{unique('cache-bus')}",
        cache_key_prefix=unique("oc-jobs"),
        access_log="errors",
        **overrides,
    )
    try:
        async with serving(build_cache(settings)) as url:
            yield url
    finally:
        async with Redis.from_url(redis_url) as redis:
            keys = [key async for key in redis.scan_iter(match=f"{settings.cache_key_prefix}:*")]
            if keys:
                await redis.delete(*keys)


def cache_token() -> str:
    """A token the served cache service accepts, with both cache scopes."""
    settings = CacheSettings(jwt_secret=SECRET)
    return bearer(settings, "cache:read", "cache:write")["Authorization"].removeprefix("Bearer ")


def fresh_policies() -> None:
    """Forgets the process's named resilience policies: a breaker a test opened (a stopped
    cache) does not stay open for the next test."""
    policies.clear()


@contextlib.asynccontextmanager
async def broker_names(amqp_url: str) -> AsyncIterator[Declared]:
    """Exchanges and queues of one test on the shared RabbitMQ, deleted afterwards."""
    names = Declared()
    try:
        yield names
    finally:
        if not amqp_url.startswith("memory://"):
            await names.remove(amqp_url)


SLEEPY_MANIFEST = """
name = "sleepy"
version = "1.0.0"
entrypoint = "sleepy:nap"
input_schema = { type = "object", required = ["seconds"], properties.seconds.type = "number" }
output_schema = { type = "object" }
"""
SLEEPY_CODE = """
import time

def nap(payload):
    time.sleep(payload["seconds"])
    return {"slept": payload["seconds"]}
"""
BOOM_MANIFEST = """
name = "boom"
version = "2.1.0"
entrypoint = "boom:explode"
input_schema = { type = "object" }
output_schema = { type = "object" }
"""
BOOM_CODE = """
def explode(payload):
    raise ValueError("the plugin gave up")
"""


def jobs_plugin_folder(root: Path) -> Path:
    """The API tests' plugin folder, plus `sleepy` (sleeps `seconds`) and `boom` (raises)."""
    folder = plugin_folder(root)
    for name, manifest, code in [
        ("sleepy", SLEEPY_MANIFEST, SLEEPY_CODE),
        ("boom", BOOM_MANIFEST, BOOM_CODE),
    ]:
        (folder / name).mkdir()
        (folder / name / "plugin.toml").write_text(manifest)
        (folder / name / f"{name}.py").write_text(code)
    return folder


class Inbox:
    """A handler keeping what it is delivered."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def __call__(self, delivery: Delivery) -> Ack:
        self.deliveries.append(delivery)
        return Ack()

    def about(self, job: str) -> list[Delivery]:
        """The deliveries about job `job` (a result's `id`, or on channel `jobs.<job>`)."""
        return [
            d
            for d in self.deliveries
            if d.routing_key == f"jobs.{job}"
            or (isinstance(d.event.data, dict) and d.event.data.get("id") == job)
        ]

    async def wait_about(self, job: str, count: int = 1, within: float = 15.0) -> list[Delivery]:
        deadline = time.monotonic() + within
        while len(found := self.about(job)) < count:
            assert time.monotonic() < deadline, f"{len(found)} deliveries about {job}, not {count}"
            await asyncio.sleep(0.02)
        return found


@dataclass
class Backends:
    """Where a test's executors keep jobs and send messages, and the test's own ends."""

    amqp_url: str
    cache_url: str
    exchange: str
    notifications: str
    queue: str
    bus: MessageBus  # the test's own, as a backend
    results: Inbox  # result.# of the jobs exchange
    notices: Inbox  # jobs.# of the notifications exchange
    names: Declared

    def settings(self, plugin_dir: Path, **overrides: Any) -> PluginSettings:
        values: dict[str, Any] = {
            "amqp_url": self.amqp_url,
            "cache_url": self.cache_url,
            "plugins_jobs_queue": self.queue,
            "plugins_jobs_exchange": self.exchange,
            "plugins_notifications_exchange": self.notifications,
            "plugins_progress_interval_seconds": 0.05,
            **overrides,
        }
        return plugin_settings(plugin_dir, **values)


@contextlib.asynccontextmanager
async def backends(amqp_url: str, cache_url: str) -> AsyncIterator[Backends]:
    """A test's exchanges and queues (on `amqp_url`, deleted afterwards on RabbitMQ), with the
    test's bus subscribed to results and notifications."""
    async with broker_names(amqp_url) as names:
        bus = connect_bus(amqp_url, source="tests/backend")
        await bus.start()
        try:
            exchange, notifications = (
                names.exchange("test.jobs.jobs."),
                names.exchange("test.jobs.notify."),
            )
            results, notices = Inbox(), Inbox()
            await bus.subscribe(
                names.queue("test.jobs.results."), [(exchange, "result.#")], results
            )
            await bus.subscribe(
                names.queue("test.jobs.notices."), [(notifications, "jobs.#")], notices
            )
            yield Backends(
                amqp_url,
                cache_url,
                exchange,
                notifications,
                names.queue("test.jobs.work."),
                bus,
                results,
                notices,
                names,
            )
        finally:
            await bus.close()


@dataclass
class Executor:
    url: str
    settings: PluginSettings
    sandbox: Any  # the in-process test double (its `runs`), or the real pool
    http: httpx.AsyncClient  # plugins:run, subject "tester"

    def as_(self, *scopes: str, subject: str = "tester") -> dict[str, str]:
        return bearer(self.settings, *scopes, subject=subject)


@contextlib.asynccontextmanager
async def executor(
    settings: PluginSettings, sandbox: Sandbox | None = None
) -> AsyncIterator[Executor]:
    """The plugin executor served for real on `settings`, with `sandbox` (the in-process test
    double unless given)."""
    box = sandbox or InProcessSandbox()
    async with serving(build_executor(settings, sandbox=box)) as url:
        headers = bearer(settings, "plugins:run")
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=15) as http:
            yield Executor(url, settings, box, http)


async def until_done(http: httpx.AsyncClient, job: str, within: float = 15.0) -> dict[str, Any]:
    """The job once `GET /v1/jobs/{job}` says it is done."""
    deadline = time.monotonic() + within
    while True:
        answer = await http.get(f"/v1/jobs/{job}")
        if answer.status_code == 200 and answer.json()["state"] == "done":
            document: dict[str, Any] = answer.json()
            return document
        assert time.monotonic() < deadline, (
            f"job {job} not done: {answer.status_code} {answer.text}"
        )
        await asyncio.sleep(0.05)
