"""`outrigger notifications publish|tail` against a hub that speaks the service's wire format
(`tests/notifications/wire_hub.py`), served by uvicorn on a free port.

The commands run in-process through click's runner, in a worker thread (the SDK's blocking
client runs its own event loop), through `outrigger`'s own command group, so their errors are
the one-line messages and exit codes a user sees.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from click.testing import CliRunner, Result

from outrigger import catalog
from outrigger.cli import main
from outrigger.resilience import policies
from outrigger.testing import bearer, free_port, serving
from tests.notifications.wire_hub import WireHub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

WAIT_SECONDS = 20.0


@pytest.fixture(autouse=True)
def _routed(monkeypatch: pytest.MonkeyPatch) -> None:
    """`outrigger` routes a service's commands once the service is installed (`app.py`); until
    the hub's app lands beside this module, route `outrigger notifications` all the same."""
    info = catalog.service("notifications")
    if info.installed:
        return
    installed = catalog.installed
    monkeypatch.setattr(catalog, "installed", lambda: [*installed(), info])


async def notifications(
    url: str | None, token: str | None, *args: str, stdin: bytes | None = None
) -> Result:
    """`outrigger notifications ARGS` with $OUTRIGGER_NOTIFICATIONS_URL and $OUTRIGGER_TOKEN set
    (None: unset), with fresh resilience policies as in a process of its own."""
    env = {"OUTRIGGER_NOTIFICATIONS_URL": url, "OUTRIGGER_TOKEN": token}
    policies.clear()
    return await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["notifications", *args],
        input=stdin,
        env=env,
        catch_exceptions=False,
    )


@dataclass
class Served:
    hub: WireHub
    url: str
    token: str

    async def run(self, *args: str, stdin: bytes | None = None) -> Result:
        return await notifications(self.url, self.token, *args, stdin=stdin)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    hub = WireHub()
    header = bearer(hub.settings, "notify:publish", "notify:subscribe", channels=["orders.**"])
    async with serving(hub.app()) as url:
        yield Served(hub, url, header["Authorization"].removeprefix("Bearer "))


def lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def one_line(text: str) -> str:
    found = text.strip().splitlines()
    assert len(found) == 1, text
    assert "Traceback" not in text
    return found[0]


async def test_publish_sends_json_from_the_argument_or_stdin_and_prints_where_it_landed(
    served: Served,
) -> None:
    [first] = lines(await served.run("publish", "orders.eu", "order.placed", '{"order": 7}'))
    [piped] = lines(
        await served.run("publish", "orders.eu", "order.paid", "-", stdin=b'[1, "two"]\n')
    )
    [again] = lines(await served.run("publish", "orders.eu", "order.paid", "3", "--id", "p-1"))
    [retried] = lines(await served.run("publish", "orders.eu", "order.paid", "3", "--id", "p-1"))

    assert first == {"channel": "orders.eu", "id": first["id"], "duplicate": False}
    assert (again["duplicate"], retried["duplicate"], retried["id"]) == (False, True, again["id"])
    assert len({first["id"], piped["id"], again["id"]}) == 3
    stored = [(m.event, m.data) for m in served.hub.history]
    assert stored == [
        ("order.placed", b'{"order":7}'),
        ("order.paid", b'[1,"two"]'),
        ("order.paid", b"3"),
    ]


async def test_publish_refuses_data_that_is_not_json_in_one_line(served: Served) -> None:
    result = await served.run("publish", "orders.eu", "order.placed", "{order: 7}")
    assert result.exit_code == 2
    assert "DATA" in one_line(result.stderr)
    assert "not JSON" in result.stderr
    assert served.hub.history == []


async def test_tail_prints_history_then_live_events_as_json_lines(served: Served) -> None:
    ids = [served.hub.publish("orders.eu", "order.placed", {"n": n}) for n in range(2)]
    served.hub.publish("billing.eu", "invoice.sent", {})  # not followed
    tailing = asyncio.create_task(
        served.run("tail", "orders.*", "orders.us", "--since-earliest", "--count", "3")
    )
    await served.hub.streams_open(1)
    ids.append(served.hub.publish("orders.us", "order.placed", {"n": 2}))
    result = await asyncio.wait_for(tailing, WAIT_SECONDS)

    assert lines(result) == [
        {"id": id, "event": "order.placed", "data": {"n": n}} for n, id in enumerate(ids)
    ]
    assert served.hub.seen[0].channels == ["orders.*", "orders.us"]


async def test_tail_resumes_after_last_event_id_and_prints_a_reset_as_an_event(
    served: Served,
) -> None:
    ids = [served.hub.publish("orders.eu", "order.placed", n) for n in range(4)]
    after = await served.run("tail", "orders.eu", "--last-event-id", ids[1], "--count", "2")
    assert [line["id"] for line in lines(after)] == ids[2:]

    served.hub.trim(keep=1)
    reset = await served.run("tail", "orders.eu", "--last-event-id", ids[0], "--count", "1")
    assert lines(reset) == [
        {
            "id": ids[3],
            "event": "reset",
            "data": {"reason": "history no longer reaches back that far", "resume_after": ids[3]},
        }
    ]


async def test_mistakes_and_refusals_are_one_line_with_their_exit_codes(served: Served) -> None:
    both = await served.run("tail", "orders.eu", "--since-earliest", "--last-event-id", "1-0")
    assert both.exit_code == 2
    assert "not both" in one_line(both.stderr)

    none = await served.run("tail")
    assert none.exit_code == 2
    assert "CHANNEL" in one_line(none.stderr)

    bad_id = await served.run("tail", "orders.eu", "--last-event-id", "yesterday")
    assert bad_id.exit_code == 2  # the hub's 400
    assert "history id 'yesterday'" in one_line(bad_id.stderr)

    denied = await served.run("tail", "billing.eu")
    assert denied.exit_code == 1
    assert "'billing.eu'" in one_line(denied.stderr)

    no_token = await notifications(served.url, None, "publish", "orders.eu", "x", "1")
    assert no_token.exit_code == 2
    assert "OUTRIGGER_TOKEN" in one_line(no_token.stderr)

    nowhere = await notifications(f"http://127.0.0.1:{free_port()}", "t", "tail", "orders.eu")
    assert nowhere.exit_code == 1
    assert "cannot reach" in one_line(nowhere.stderr)


def test_the_commands_load_the_sdk_only_when_they_run() -> None:
    code = (
        "import sys; from outrigger import catalog; "
        "catalog.service('notifications').commands(); "
        "print(','.join(m for m in ('outrigger.clients', 'httpx', 'pydantic', 'fastapi') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == ""
