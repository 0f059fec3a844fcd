"""Liveness, readiness and metrics: the routes every service serves outside `/v1`.

Readiness means "can serve its API". Each dependency registers a check: when a *required* one
fails, `/readyz` answers 503 and the orchestrator stops sending traffic; when a *degraded-only*
one fails (a dependency the API does without for a while, such as the broker for the event
store, whose relay catches up), the service stays ready and `/readyz` says `"degraded"`. Either
way the state is the gauge `outrigger_dependency_up{service,dependency,required}` and each change
is one log line. The checks run for every `/readyz` and every few seconds in the background, so
the gauge and the log follow an outage even where nothing probes.

A service wires each dependency with `dependency()`: it registers the check and starts the
adapter, at once if its server answers, else in the background until it does. So a service
starts while its database, Redis or broker is down, serves `/healthz`, reports not ready (or
degraded), and becomes ready by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from prometheus_client import Gauge
from starlette.responses import Response

from outrigger.errors import InfrastructureError
from outrigger.http.responses import JSONResponse, problem_response
from outrigger.resilience import Retry
from outrigger.tasks import Periodic, stop_task
from outrigger.telemetry.metrics import exposition

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from fastapi import FastAPI

    ReadinessCheck = Callable[[], Awaitable[object]]

CHECK_TIMEOUT_SECONDS = 2.0
MONITOR_INTERVAL_SECONDS = 5.0
STARTING = Retry(attempts=sys.maxsize, base_delay=0.25, max_delay=2.0)
DEPENDENCY_UP = Gauge(
    "outrigger_dependency_up",
    "1 while a dependency passes its readiness check; a required one at 0 makes the service "
    'not ready, one with required="false" only degrades it.',
    ["service", "dependency", "required"],
)
log = logging.getLogger("outrigger.http")
router = APIRouter(include_in_schema=False)


@dataclass
class _Dependency:
    check: ReadinessCheck
    required: bool
    failure: str | None = None
    detail: object = None


def add_readiness_check(
    app: FastAPI, name: str, check: ReadinessCheck, *, required: bool = True
) -> None:
    """Registers a check of dependency `name`: it raises (or takes longer than 2 s) while the
    dependency is down. `required=False`: the service serves its API without it, degraded.
    What a passing check returns, unless None, is shown under `details` in `/readyz` (JSON)."""
    app.state.readiness_checks[name] = _Dependency(check, required)


@contextlib.asynccontextmanager
async def dependency(
    app: FastAPI,
    name: str,
    *,
    check: ReadinessCheck,
    start: Callable[[], Awaitable[object]] | None = None,
    required: bool = True,
) -> AsyncIterator[None]:
    """Registers the readiness check of dependency `name` and runs `start` (connecting, then
    what needs the connection, such as subscribing): at once if it succeeds, else again and
    again in the background until it does, while the service runs. Enter it in the lifespan's
    exit stack, after the adapter's `close`, so a start still under way stops first.

        await stack.enter_async_context(dependency(app, "bus", check=bus.check, start=bus.start))
    """
    add_readiness_check(app, name, check, required=required)
    starting: asyncio.Task[None] | None = None
    if start is not None:
        try:
            await start()
        except InfrastructureError as exc:
            log.warning("%s unavailable at start-up (%s); retrying in the background", name, exc)
            starting = asyncio.create_task(_keep_starting(name, start), name=f"start {name}")
    try:
        yield
    finally:
        await stop_task(starting)


async def _keep_starting(name: str, start: Callable[[], Awaitable[object]]) -> None:
    try:
        await STARTING.call(start, name=f"start {name}")
    except Exception:
        log.exception("%s failed to start; it stays unavailable", name)
        return
    log.info("%s started", name)


async def _run(name: str, check: ReadinessCheck) -> tuple[str | None, object]:
    """(None, what `check` returned) if it passed, else (why not, None). A check that does not
    answer in time is left to end on its own: waiting for its cancellation could take as long
    as the hang itself."""
    task = asyncio.ensure_future(check())
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        await asyncio.wait({task}, timeout=CHECK_TIMEOUT_SECONDS)
    finally:
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        return f"{name}: no answer within {CHECK_TIMEOUT_SECONDS:g}s", None
    exc = task.exception()
    if exc is None:
        return None, task.result()
    return f"{name}: {getattr(exc, 'detail', None) or type(exc).__name__}", None


async def evaluate(app: FastAPI) -> dict[str, _Dependency]:
    """Runs every check at once; updates the gauge, and logs each dependency that changed."""
    dependencies: dict[str, _Dependency] = dict(app.state.readiness_checks)
    names = list(dependencies)
    answers = await asyncio.gather(*(_run(name, dependencies[name].check) for name in names))
    for name, (failure, detail) in zip(names, answers, strict=True):
        dependency = dependencies[name]
        before, dependency.failure = dependency.failure, failure
        dependency.detail = detail
        required = "true" if dependency.required else "false"
        DEPENDENCY_UP.labels(app.state.service, name, required).set(failure is None)
        if failure is not None and before is None:
            effect = "not ready" if dependency.required else "degraded, still serving"
            log.warning("%s: %s", effect, failure)
        elif failure is None and before is not None:
            log.info("%s is back", name)
    return dependencies


@contextlib.asynccontextmanager
async def monitoring(app: FastAPI) -> AsyncIterator[None]:
    """Evaluates the checks now and every few seconds while the block runs."""

    async def step() -> None:
        await evaluate(app)

    monitor = Periodic(step, MONITOR_INTERVAL_SECONDS, name="readiness")
    monitor.start()
    try:
        yield
    finally:
        await monitor.stop()


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    dependencies = await evaluate(request.app)
    results = {name: dep.failure or "ok" for name, dep in dependencies.items()}
    details = {name: dep.detail for name, dep in dependencies.items() if dep.detail is not None}
    extra: dict[str, Any] = {"details": details} if details else {}
    down = [dep.failure for dep in dependencies.values() if dep.failure and dep.required]
    if down:
        error = InfrastructureError("not ready: " + "; ".join(down), checks=results, **extra)
        return problem_response(error, "/readyz")
    degraded = any(dep.failure for dep in dependencies.values())
    status = "degraded" if degraded else "ready"
    return JSONResponse({"status": status, "checks": results, **extra})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    body, content_type = exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})
