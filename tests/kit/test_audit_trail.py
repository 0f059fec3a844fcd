"""The kit's audit trail: every service's records have the audit service's record shape."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY

from outrigger.audit_trail import AuditTrail
from outrigger.bus import connect_bus
from outrigger.telemetry import request_id_var
from outrigger.testing import audit_inbox, unique

FAILURES = "outrigger_audit_publish_failures_total"

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from outrigger.bus import MessageBus


@pytest.fixture
async def bus() -> AsyncIterator[MessageBus]:
    bus = connect_bus(f"memory://{unique('trail')}", source="billing")
    await bus.start()
    yield bus
    await bus.close()


async def test_a_record_is_a_cloudevent_whose_data_is_an_audit_record(bus: MessageBus) -> None:
    inbox = await audit_inbox(bus, "billing")
    token = request_id_var.set("req-7")
    try:
        await AuditTrail(bus, "billing").record(
            "invoice_voided", actor="ada", resource="invoice/42", data={"amount": 12}
        )
    finally:
        request_id_var.reset(token)
    [delivery] = await inbox.wait(1)
    assert delivery.routing_key == "billing.invoice_voided"
    assert delivery.event.type == "billing.invoice_voided"
    assert delivery.event.source == "billing"
    assert delivery.event.data == {
        "actor": "ada",
        "action": "invoice_voided",
        "resource": "invoice/42",
        "outcome": "success",
        "tenant": "default",
        "data": {"amount": 12, "request_id": "req-7"},
        "sensitive": [],
        "subject": None,
    }


async def test_outside_a_request_the_data_is_as_given(bus: MessageBus) -> None:
    inbox = await audit_inbox(bus, "billing")
    trail = AuditTrail(bus, "billing")
    await trail.record("sweep", actor="billing", resource="invoices", outcome="failure")
    [delivery] = await inbox.wait(1)
    assert delivery.event.data["data"] == {}
    assert delivery.event.data["outcome"] == "failure"


async def test_a_broker_that_is_down_loses_no_record_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = connect_bus(f"memory://{unique('trail')}", source="billing")
    labels = {"service": "billing"}
    before = REGISTRY.get_sample_value(FAILURES, labels) or 0
    with caplog.at_level(logging.ERROR, "outrigger.audit"):
        await AuditTrail(closed, "billing").record("purge", actor="ops", resource="all")
    assert REGISTRY.get_sample_value(FAILURES, labels) == before + 1
    [logged] = caplog.records
    assert "billing.purge not published" in logged.getMessage()
    assert logged.audit_record["resource"] == "all"  # type: ignore[attr-defined]


def test_actions_and_services_are_words() -> None:
    with pytest.raises(ValueError, match="service name"):
        AuditTrail(connect_bus("memory://", source="x"), "Bad Name")
