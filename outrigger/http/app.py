"""`create_app()`: the FastAPI application every service is built on."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from outrigger import __version__
from outrigger.auth import TokenVerifier
from outrigger.errors import SettingsError
from outrigger.http import health
from outrigger.http.disconnect import CancelOnDisconnect
from outrigger.http.middleware import RequestMiddleware, redact_query
from outrigger.http.openapi import install_problem_documentation
from outrigger.http.problems import install_problem_handlers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from contextlib import AbstractAsyncContextManager

    from fastapi import APIRouter, FastAPI
    from opentelemetry.trace import Span
    from starlette.types import Scope

    from outrigger.settings import Settings

    Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

DOCS_ASSETS = "/docs/static"
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Last-Event-ID",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
]
CORS_RESPONSE_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-ID"]
CORS_MAX_AGE_SECONDS = 600


def create_app(
    service: str,
    settings: Settings,
    *,
    routers: Sequence[APIRouter] = (),
    lifespan: Lifespan | None = None,
    description: str = "",
) -> FastAPI:
    """Builds a service's app: its routers under the kit's middleware, errors and probes.

    `lifespan` is the service's wiring: it builds adapters from `app.state.settings`, registers
    their readiness checks (`add_readiness_check`) and closes them on exit, in reverse order.
    Before it runs, `app.state.auth` holds the token verifier that `require_scope` uses. A
    `SettingsError` it raises (the host cannot do what the settings ask) is kept in
    `app.state.startup_error`, so that `outrigger serve` ends with that one line.
    """

    @contextlib.asynccontextmanager
    async def kit_lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.auth = TokenVerifier.from_settings(settings)
        async with contextlib.AsyncExitStack() as stack:
            if lifespan is not None:
                try:
                    await stack.enter_async_context(lifespan(app))
                except SettingsError as exc:
                    app.state.startup_error = str(exc)
                    raise
            await stack.enter_async_context(health.monitoring(app))
            yield

    app = FastAPIOffline(  # /docs and /redoc with their assets served here, not from a CDN
        title=f"Outrigger {service}",
        version=__version__,
        description=description,
        lifespan=kit_lifespan,
        static_url=DOCS_ASSETS,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.readiness_checks = {}
    install_problem_handlers(app)
    install_problem_documentation(app)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(CancelOnDisconnect)  # inside RequestMiddleware, which logs its 499
    app.add_middleware(
        RequestMiddleware,
        service=service,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.http_body_timeout_seconds,
        access_log=settings.access_log,
    )
    if settings.cors_origins:  # outermost: a preflight is answered before authentication
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_RESPONSE_HEADERS,
            max_age=CORS_MAX_AGE_SECONDS,
        )
    if _tracing_enabled():
        # the stable HTTP semantic conventions (http.request.method, url.path, …), not the old
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="healthz,readyz,metrics", server_request_hook=_redact_token
        )
    return app


def _redact_token(span: Span, scope: Scope) -> None:
    """Shows `url.query` with a token in it (`?access_token=`) as `REDACTED`."""
    query = scope.get("query_string", b"")
    if query and span.is_recording():
        redacted = redact_query(query)
        if redacted != query.decode("latin-1"):
            span.set_attribute("url.query", redacted)


def _tracing_enabled() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
