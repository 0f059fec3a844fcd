"""With `OTEL_EXPORTER_OTLP_ENDPOINT` set, request spans leave by OTLP/HTTP (a real receiver here).

The exporter is process-wide, so the traced app runs in a child process of its own.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading

CHILD = """
import asyncio, httpx
from outrigger.http import create_app
from outrigger.settings import Settings
from outrigger.telemetry import configure_tracing

async def main():
    provider = configure_tracing("kit-test")
    assert provider is not None
    app = create_app("kit-test", Settings(jwt_secret="x" * 32, data_dir="{data}"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/v1/nothing")).status_code == 404
    provider.shutdown()

asyncio.run(main())
"""


def test_request_spans_are_exported_by_otlp(tmp_path: object) -> None:
    received: list[str] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        }
        child = subprocess.run(
            [sys.executable, "-c", CHILD.replace("{data}", str(tmp_path))],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert child.returncode == 0, child.stderr
    assert "/v1/traces" in received


REDACTING_CHILD = """
import asyncio, httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from outrigger.http import create_app
from outrigger.settings import Settings

async def main():
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    app = create_app("kit-test", Settings(jwt_secret="x" * 32, data_dir="{data}"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/v1/nothing", params={"channel": "a", "access_token": "s3cret"})
    for span in spans.get_finished_spans():
        print(span.name, dict(span.attributes or {}))

asyncio.run(main())
"""


def test_a_traced_query_shows_the_access_token_redacted(tmp_path: object) -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}  # never reached
    child = subprocess.run(
        [sys.executable, "-c", REDACTING_CHILD.replace("{data}", str(tmp_path))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert "'url.query': 'channel=a&access_token=REDACTED'" in child.stdout
    assert "s3cret" not in child.stdout
