"""Wiring: the plugin executor's app, with the plugin folder, the sandbox (a pool of confined
workers), the store of jobs' state, the bus (audit records, jobs and their results), and the
probes.

`outrigger serve plugin-executor` (or `python -m services.plugin_executor`) calls `build_app()`.
Everything that does I/O is built in the lifespan and closed there, in reverse order: the jobs'
subscription ends first (running jobs get the shutdown grace, then go back to the queue), then
the sandbox stops (letting sync runs finish within their limits), then the store and the bus. A
sandbox that refuses to start (the host lacks a layer `OUTRIGGER_PLUGINS_REQUIRED_FEATURES`
requires) stops the service with one line, as a bad setting does.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

from outrigger.audit_trail import AuditTrail
from outrigger.auth import Scopes, auth_from_settings
from outrigger.bus import connect_bus
from outrigger.http import create_app, dependency
from outrigger.resilience import policies
from outrigger.settings import SettingsError, load_settings
from services.plugin_executor.adapters.plugins import PluginFolder
from services.plugin_executor.api import ROUTERS
from services.plugin_executor.consumers import JobRunner, subscribe_jobs
from services.plugin_executor.domain import Feature, Features, SandboxUnavailable
from services.plugin_executor.metrics import SANDBOX_FEATURE
from services.plugin_executor.settings import PluginSettings
from services.plugin_executor.usecases import JobService, PluginService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from fastapi import FastAPI

    from services.plugin_executor.domain import JobStore, Sandbox

SERVICE = "plugin-executor"
CACHE_SCOPES = (Scopes.CACHE_READ, Scopes.CACHE_WRITE)
CACHE_TOKEN_SECONDS = 3600
DESCRIPTION = """Runs plugins (a folder with `plugin.toml` and Python code) on JSON input, each
run in a fresh confined process from a warm pool: rlimits, a session of its own, an empty
environment, a private work directory, no network, and Landlock where the host has it. Every
run ends with a reason (`ok`, `error`, `timeout`, `cpu_limit`, `memory_limit`, `output_limit`,
`killed`, `invalid_output`, `sandbox_violation`) and its usage; only bad input is an error."""


def build_app(settings: PluginSettings | None = None, *, sandbox: Sandbox | None = None) -> FastAPI:
    """The plugin executor; settings from the environment unless given. Tests pass a
    `sandbox`; without one the lifespan builds the pool of confined workers."""
    settings = settings or load_settings(PluginSettings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            bus = connect_bus(settings.amqp_url, source=SERVICE, prefetch=settings.amqp_prefetch)
            stack.push_async_callback(bus.close)
            store = build_job_store(settings)
            stack.push_async_callback(store.close)
            if sandbox is None:
                from services.plugin_executor.adapters import build_sandbox

                box = build_sandbox(settings)
            else:
                box = sandbox
            source = PluginFolder(settings.plugin_dir, settings.limit_policy())
            service = PluginService(source, box, AuditTrail(bus, SERVICE))
            await service.load()  # before the pool starts, so its workers import them warm
            stack.push_async_callback(box.close)
            try:
                await box.start()
            except SandboxUnavailable as exc:
                raise SettingsError(f"the plugin sandbox cannot start: {exc.detail}") from None
            features = box.features()
            for feature in Feature:
                SANDBOX_FEATURE.labels(feature.value).set(feature in features.active)

            async def sandbox_layers() -> dict[str, Any]:
                return described(box.features(), settings.plugins_required_features)

            await stack.enter_async_context(dependency(app, "sandbox", check=sandbox_layers))
            jobs = JobService(
                service,
                store,
                bus,
                exchange=settings.plugins_jobs_exchange,
                notifications=settings.plugins_notifications_exchange,
                progress_interval=settings.plugins_progress_interval_seconds,
            )
            runner = JobRunner(jobs, bus)
            # the jobs' subscription ends first (running jobs get the grace), then the sandbox
            stack.push_async_callback(runner.stop, settings.shutdown_grace_seconds)

            async def start_bus() -> None:
                await bus.start()
                await subscribe_jobs(
                    bus,
                    runner,
                    queue=settings.plugins_jobs_queue,
                    exchange=settings.plugins_jobs_exchange,
                    prefetch=settings.plugins_jobs_prefetch,
                )

            # without the broker, sync runs go on (their audit records are logged instead);
            # jobs cannot be queued (503) until it is back
            await stack.enter_async_context(
                dependency(app, "bus", check=bus.check, start=start_bus, required=False)
            )
            # without the cache service jobs still run and publish; GET /v1/jobs answers 503
            await stack.enter_async_context(
                dependency(app, "job-state", check=store.check, required=False)
            )
            app.state.plugins = service
            app.state.jobs = jobs
            yield

    return create_app(
        SERVICE, settings, routers=ROUTERS, lifespan=lifespan, description=DESCRIPTION
    )


def build_job_store(settings: PluginSettings) -> JobStore:
    """Where jobs' state is kept: the cache service at `OUTRIGGER_CACHE_URL`, or memory."""
    if settings.cache_url == "memory://":
        from services.plugin_executor.adapters.job_memory import MemoryJobStore

        return MemoryJobStore(ttl_seconds=settings.plugins_job_ttl_seconds)
    from services.plugin_executor.adapters.job_cache import POLICY, CacheJobStore

    if POLICY not in policies:  # retries and breaker as the kit's, and a timeout
        defaults = dataclasses.replace(
            policies.defaults, timeout=settings.plugins_cache_timeout_seconds
        )
        policies.register(defaults.build(POLICY))
    token: str | Callable[[], str]
    if settings.plugins_cache_token is not None:
        token = settings.plugins_cache_token.get_secret_value()
    else:
        issuer = auth_from_settings(settings)[1]
        if issuer is None:
            raise SettingsError(
                "OUTRIGGER_PLUGINS_CACHE_TOKEN: needed to call the cache service when the "
                "service holds no signing key (only public keys) to mint one"
            )

        def token() -> str:
            return issuer.mint(SERVICE, CACHE_SCOPES, CACHE_TOKEN_SECONDS)

    return CacheJobStore(
        settings.cache_url,
        token,
        ttl_seconds=settings.plugins_job_ttl_seconds,
        renew_seconds=CACHE_TOKEN_SECONDS / 2,
        timeout=settings.plugins_cache_timeout_seconds,
    )


def described(features: Features, required: frozenset[Feature]) -> dict[str, Any]:
    """The sandbox's layers for `/readyz`: active, required, and why each missing one is."""
    return {
        "active": sorted(feature.value for feature in features.active),
        "required": sorted(feature.value for feature in required),
        "missing": {
            feature.value: features.detail.get(feature, "not offered by this host")
            for feature in Feature
            if feature not in features.active
        },
    }
