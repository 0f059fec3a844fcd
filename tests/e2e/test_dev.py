"""`outrigger dev` (what `make run` calls) as a user runs it: no server, no setting, one process."""

from __future__ import annotations

import contextlib
import signal
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from outrigger import catalog
from outrigger.testing import EndOfStream, SseReader
from tests.e2e.dev import STOPS_WITHIN_SECONDS, running_dev

if TYPE_CHECKING:
    from outrigger.sse import Frame


async def test_dev_serves_every_installed_service_with_embedded_backends(tmp_path: Path) -> None:
    with running_dev(tmp_path) as dev:
        services = catalog.installed()
        async with httpx.AsyncClient(timeout=5) as client:
            for info in services:
                assert (await client.get(f"{dev.url(info.name)}/readyz")).status_code == 200
                assert dev.url(info.name) in "\n".join(dev.banner)
            headers = {"Authorization": f"Bearer {dev.token}"}
            async with client.stream(
                "GET", f"{dev.url('event-store')}/v1/subscribe", headers=headers
            ) as subscription:
                assert subscription.status_code == 200
                reader = SseReader(subscription)
                assert (await reader.message()).event == "live"
                stopping = time.monotonic()
                dev.process.send_signal(signal.SIGTERM)
                last = await last_message(reader)
                dev.process.wait(timeout=STOPS_WITHIN_SECONDS)
                stopped = time.monotonic() - stopping
    assert last.event == "shutdown"
    assert last.retry is not None
    assert dev.process.returncode == 0
    assert stopped < STOPS_WITHIN_SECONDS
    log = dev.log.read_text()
    assert "Traceback" not in log
    assert "Cancel" not in log
    data_dir = tmp_path / "xdg" / "outrigger"
    assert f"  data      {data_dir}" in dev.banner
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is not 0600"
    assert not (tmp_path / ".outrigger").exists()


def test_each_log_line_names_the_service_it_is_about(tmp_path: Path) -> None:
    with running_dev(tmp_path) as dev:
        for info in catalog.installed():
            response = httpx.get(f"{dev.url(info.name)}/v1/unknown", timeout=5)
            assert response.status_code in (401, 404)
        dev.process.send_signal(signal.SIGINT)
        dev.process.wait(timeout=30)
        lines = dev.log_lines()
    requests = [line for line in lines if line.get("path") == "/v1/unknown"]
    assert sorted(str(line["service"]) for line in requests) == sorted(
        info.name for info in catalog.installed()
    )
    for info in catalog.installed():
        started = [line for line in lines if line["message"] == "Application startup complete."]
        assert info.name in {line["service"] for line in started}


@pytest.mark.rabbitmq
def test_the_banner_shows_backend_urls_without_their_passwords(tmp_path: Path, vhost: str) -> None:
    with running_dev(tmp_path, OUTRIGGER_AMQP_URL=vhost) as dev:
        banner = "\n".join(dev.banner)
    user_and_password = vhost.split("//", 1)[1].split("@", 1)[0]
    user = user_and_password.split(":", 1)[0]
    assert f"  bus       amqp://{user}:***@127.0.0.1:" in banner
    assert user_and_password not in banner


async def last_message(reader: SseReader) -> Frame:
    last = None
    with contextlib.suppress(EndOfStream):
        while True:
            last = await reader.message(max_wait=STOPS_WITHIN_SECONDS)
    assert last is not None, "the stream ended without a message"
    return last
