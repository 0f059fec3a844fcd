"""The direct publish-frame encoder makes exactly the bytes pamqp makes."""

from __future__ import annotations

from typing import Any

import pytest
from pamqp import commands, frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from outrigger.bus.amqp_frames import publish_frames

MAX_BODY = 131_064


def pamqp_frames(
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    *,
    content_type: str | None,
    headers: dict[str, Any],
    delivery_mode: int,
    message_id: str | None,
    max_body_frame: int,
) -> bytes:
    properties = commands.Basic.Properties(
        content_type=content_type,
        headers=headers or None,
        delivery_mode=delivery_mode,
        message_id=message_id,
    )
    frames: list[Any] = [
        commands.Basic.Publish(exchange=exchange, routing_key=routing_key),
        ContentHeader(0, len(body), properties),
    ]
    frames += [
        ContentBody(body[start : start + max_body_frame])
        for start in range(0, len(body), max_body_frame)
    ]
    return b"".join(frame.marshal(each, channel) for each in frames)


CASES = {
    "cloud event": (
        1,
        "outrigger.events",
        "orders.Placed",
        b'{"total": 12}',
        {
            "content_type": "application/json",
            "headers": {"cloudEvents_type": "Placed", "cloudEvents_subject": "orders-é1"},
            "delivery_mode": 2,
            "message_id": "2f1c0c1e-0d5b-4d7e-9a57-94b6a9fb2d11",
        },
    ),
    "no body, no headers, no id": (
        7,
        "",
        "queue",
        b"",
        {"content_type": None, "headers": {}, "delivery_mode": 2, "message_id": None},
    ),
    "non-string header values": (
        3,
        "x",
        "k",
        b"data",
        {
            "content_type": "text/plain",
            "headers": {"x-attempt": 3, "x-ok": True, "s": "v"},
            "delivery_mode": 1,
            "message_id": "m",
        },
    ),
    "body over several frames": (
        2,
        "x",
        "k",
        bytes(range(256)) * 1200,
        {
            "content_type": "application/octet-stream",
            "headers": {},
            "delivery_mode": 2,
            "message_id": "big",
        },
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_frames_are_byte_for_byte_pamqps(case: tuple[Any, ...]) -> None:
    channel, exchange, routing_key, body, properties = case
    for max_body_frame in (MAX_BODY, 1000):
        ours = publish_frames(
            channel, exchange, routing_key, body, max_body_frame=max_body_frame, **properties
        )
        theirs = pamqp_frames(
            channel, exchange, routing_key, body, max_body_frame=max_body_frame, **properties
        )
        assert ours == theirs


def test_a_name_longer_than_a_short_string_is_refused() -> None:
    with pytest.raises(ValueError, match="255 bytes"):
        publish_frames(
            1,
            "x",
            "k" * 256,
            b"",
            content_type=None,
            headers={},
            delivery_mode=2,
            message_id=None,
            max_body_frame=MAX_BODY,
        )
