"""Wiring: the plugin executor's app, with the plugin folder, the sandbox (a pool of confined
workers), the bus for audit records, and the probes.

`outrigger serve plugin-executor` (or `python -m services.plugin_executor`) calls `build_app()`.
Everything that does I/O is built in the lifespan and closed there, in reverse order: the
sandbox stops (letting runs finish within their limits) before the bus that audits them. A
sandbox that refuses to start (the host lacks a layer `OUTRIGGER_PLUGINS_REQUIRED_FEATURES`
requires) stops the service with one line, as a bad setting does.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.http import create_app, dependency
from outrigger.settings import SettingsError, load_settings
from services.plugin_executor.adapters.plugins import PluginFolder
from services.plugin_executor.api import ROUTERS
from services.plugin_executor.domain import Feature, Features, SandboxUnavailable
from services.plugin_executor.metrics import SANDBOX_FEATURE
from services.plugin_executor.settings import PluginSettings
from services.plugin_executor.usecases import PluginService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from services.plugin_executor.domain import Sandbox

SERVICE = "plugin-executor"
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
            # without the broker, runs go on; their audit records are logged instead
            await stack.enter_async_context(
                dependency(app, "bus", check=bus.check, start=bus.start, required=False)
            )
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
            app.state.plugins = service
            yield

    return create_app(
        SERVICE, settings, routers=ROUTERS, lifespan=lifespan, description=DESCRIPTION
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
