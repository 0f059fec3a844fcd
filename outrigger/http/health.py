"""Liveness, readiness and metrics: the routes every service serves outside `/v1`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import Response

from outrigger.errors import InfrastructureError
from outrigger.http.responses import JSONResponse, problem_response
from outrigger.telemetry.metrics import exposition

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastapi import FastAPI

    ReadinessCheck = Callable[[], Awaitable[object]]

CHECK_TIMEOUT_SECONDS = 2.0
log = logging.getLogger("outrigger.http")
router = APIRouter(include_in_schema=False)


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    """Registers a check run by `/readyz`; it raises (or times out) when its adapter is down."""
    app.state.readiness_checks[name] = check


async def _run(name: str, check: ReadinessCheck) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
    except TimeoutError:
        return f"{name}: no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as exc:
        return f"{name}: {getattr(exc, 'detail', None) or type(exc).__name__}"
    return None


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    checks: dict[str, ReadinessCheck] = request.app.state.readiness_checks
    names = list(checks)
    failures = await asyncio.gather(*(_run(name, checks[name]) for name in names))
    results = {name: failure or "ok" for name, failure in zip(names, failures, strict=True)}
    down = [failure for failure in failures if failure]
    if not down:
        return JSONResponse({"status": "ready", "checks": results})
    log.warning("not ready: %s", "; ".join(down))
    error = InfrastructureError("not ready: " + "; ".join(down), checks=results)
    return problem_response(error, "/readyz")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    body, content_type = exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})
