"""The CloudEvents envelope, the retry schedule and adapter selection, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from outrigger.bus import CloudEvent, MemorySeenIds, connect_bus
from outrigger.bus.cloudevents import decode, encode_data, encode_headers
from outrigger.bus.dispatch import RetryPolicy
from outrigger.bus.memory import MemoryBus
from outrigger.bus.rabbitmq import RabbitMQBus
from outrigger.errors import InvalidInput


def test_binary_mode_puts_attributes_in_headers_and_data_in_the_body() -> None:
    event = CloudEvent.new(
        source="/svc/audit",
        type="audit.recorded",
        data={"a": 1},
        subject="s-1",
        extensions={"tenant": "acme"},
    )
    traceparent = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    headers = encode_headers(event, traceparent)
    assert headers == {
        "cloudEvents_specversion": "1.0",
        "cloudEvents_id": event.id,
        "cloudEvents_type": "audit.recorded",
        "cloudEvents_source": "/svc/audit",
        "cloudEvents_time": event.time.isoformat(),
        "cloudEvents_subject": "s-1",
        "cloudEvents_tenant": "acme",
        **traceparent,
    }
    assert encode_data(event) == b'{"a":1}'
    assert decode(encode_data(event), headers, event.datacontenttype, event.id) == event


@pytest.mark.parametrize("prefix", ["cloudEvents_", "cloudEvents:", "ce_", "ce-", "Ce-"])
def test_decode_accepts_the_header_spellings_other_sdks_send(prefix: str) -> None:
    headers = {
        f"{prefix}specversion": "1.0",
        f"{prefix}id": "id-7",
        f"{prefix}type": "orders.created",
        f"{prefix}source": "/shop",
        f"{prefix}subject": "order-7",
        f"{prefix}time": "2026-11-21T08:00:00Z",
        f"{prefix}tenant": "acme",
        "x-other": "not an attribute",
    }
    event = decode(b'{"n": 1}', headers, None, None)
    assert event == CloudEvent(
        id="id-7",
        source="/shop",
        type="orders.created",
        data={"n": 1},
        subject="order-7",
        time=datetime(2026, 11, 21, 8, tzinfo=UTC),
        extensions={"tenant": "acme"},
    )


def test_decode_prefers_cloudevents_underscore_headers_and_the_message_id() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "from.http",
        "ce_type": "from.kafka",
        "cloudEvents:type": "from.amqp.colon",
        "cloudEvents_type": "from.amqp",
        "ce-source": "s",
        "cloudEvents_id": "header-id",
    }
    event = decode(b"", headers, "text/plain", "message-id")
    assert (event.type, event.id, event.extensions) == ("from.amqp", "message-id", {})
    assert decode(b"", headers, "text/plain", None).id == "header-id"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T08:00:00Z", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21t08:00:00z", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21 08:00:00Z", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21T08:00:00+00:00", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21T08:00:00-00:00", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21T09:30:00+01:30", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21T03:00:00-05:00", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21T08:00:00.5Z", datetime(2026, 11, 21, 8, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-21T08:00:00.123456Z", datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-21T08:00:00.4579346789Z", datetime(2026, 11, 21, 8, 0, 0, 457934, tzinfo=UTC)),
        ("2026-12-31T23:59:60Z", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_decode_reads_any_rfc3339_time(text: str, expected: datetime) -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s", "ce-time": text}
    event = decode(b"", headers, "text/plain", "id-1")
    assert event.time == expected
    assert event.time.utcoffset() is not None


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T08:00:00",
        "2026-11-21",
        "21/11/2026 08:00",
        "2026-13-01T00:00:00Z",
        "now",
        "20261121T080000Z",
        "2026-11-21T08:00Z",
        "2026-02-30T08:00:00Z",
    ],
)
def test_decode_rejects_a_time_that_is_not_rfc3339(text: str) -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s", "ce-time": text}
    with pytest.raises(ValueError, match=r"RFC 3339|valid date-time"):
        decode(b"", headers, "text/plain", "id-1")


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, b"{}", "specversion"),
        ({"cloudEvents_specversion": "0.3"}, b"{}", "specversion"),
        ({"cloudEvents_specversion": "1.0", "cloudEvents_source": "s"}, b"{}", "type"),
    ],
)
def test_decode_rejects_what_is_not_a_cloudevent(
    headers: dict[str, str], body: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decode(body, headers, None, "id-1")


@pytest.mark.parametrize("name", ["Tenant", "with-dash", "id", "a" * 21])
def test_extension_names_follow_the_spec(name: str) -> None:
    with pytest.raises(ValueError, match="extension name"):
        CloudEvent.new(source="s", type="t", extensions={name: "v"})


def test_event_times_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CloudEvent(id="1", source="s", type="t", time=datetime(2026, 11, 21))


def test_non_json_data_must_be_bytes_or_text() -> None:
    text = CloudEvent.new(source="s", type="t", data="héllo", datacontenttype="text/plain")
    assert encode_data(text) == "héllo".encode()
    with pytest.raises(TypeError, match="JSON datacontenttype"):
        encode_data(CloudEvent.new(source="s", type="t", data=[1], datacontenttype="text/csv"))


def test_retry_delay_doubles_each_attempt_up_to_its_cap() -> None:
    policy = RetryPolicy(max_attempts=8, delay_seconds=1.0, max_delay_seconds=10.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_the_url_scheme_picks_the_adapter() -> None:
    assert isinstance(connect_bus("memory://", source="s"), MemoryBus)
    assert isinstance(connect_bus("amqp://guest:guest@127.0.0.1/", source="s"), RabbitMQBus)
    assert isinstance(connect_bus("amqps://user:pw@broker/", source="s"), RabbitMQBus)
    with pytest.raises(InvalidInput, match="amqp://"):
        connect_bus("kafka://broker", source="s")


async def test_seen_ids_forget_the_least_recently_seen_first() -> None:
    seen = MemorySeenIds(capacity=2)
    await seen.remember("q", "a")
    await seen.remember("q", "b")
    assert await seen.seen("q", "a")
    await seen.remember("q", "c")
    assert await seen.seen("q", "a")
    assert not await seen.seen("q", "b")
    assert not await seen.seen("other-queue", "a")
