"""CloudEvents 1.0 in AMQP 0-9-1 binary mode, the one envelope every adapter writes and reads.

The body is `data`, `content_type` is `datacontenttype`, `message_id` is `id`; every other
attribute and extension travels as a `cloudEvents_<name>` header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from outrigger.bus.port import JSON, SPECVERSION, CloudEvent

if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "cloudEvents_"
_ALT_PREFIX = "cloudEvents:"
_CORE = frozenset({"specversion", "id", "type", "source", "subject", "time", "datacontenttype"})


@lru_cache(maxsize=64)
def is_json(content_type: str) -> bool:
    """True for `application/json` and any `+json` media type, parameters ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON or media_type.endswith("+json")


def encode_data(event: CloudEvent) -> bytes:
    """The message body: bytes as they are, JSON-able data as JSON, text as UTF-8."""
    data = event.data
    if isinstance(data, bytes):
        return data
    if data is None:
        return b""
    if is_json(event.datacontenttype):
        return orjson.dumps(data)
    if isinstance(data, str):
        return data.encode()
    raise TypeError(
        f"event {event.id}: data of type {type(data).__name__} needs bytes or a JSON "
        f"datacontenttype, not {event.datacontenttype!r}"
    )


def encode_headers(event: CloudEvent, trace_headers: Mapping[str, str]) -> dict[str, Any]:
    """The `cloudEvents_*` headers of `event`, plus the trace context headers."""
    headers: dict[str, Any] = {
        "cloudEvents_specversion": SPECVERSION,
        "cloudEvents_type": event.type,
        "cloudEvents_source": event.source,
        "cloudEvents_time": event.time.isoformat(),
    }
    if event.subject is not None:
        headers["cloudEvents_subject"] = event.subject
    for name, value in event.extensions.items():
        headers[PREFIX + name] = value
    if trace_headers:
        headers.update(trace_headers)
    return headers


def decode(
    body: bytes, headers: Mapping[str, Any], content_type: str | None, message_id: str | None
) -> CloudEvent:
    """The event in a message; raises ValueError if it is not a valid CloudEvents 1.0 message."""
    specversion = _attribute(headers, "specversion")
    if specversion != SPECVERSION:
        raise ValueError(f"not a CloudEvents {SPECVERSION} message (specversion {specversion!r})")
    event_id = message_id or _attribute(headers, "id")
    event_type, source = _attribute(headers, "type"), _attribute(headers, "source")
    if not event_id or not event_type or not source:
        raise ValueError("a CloudEvent needs an id (message_id), a type and a source")
    time = _attribute(headers, "time")
    datacontenttype = content_type or JSON
    return CloudEvent(
        id=event_id,
        source=source,
        type=event_type,
        data=_decode_data(body, datacontenttype),
        subject=_attribute(headers, "subject"),
        time=datetime.fromisoformat(time) if time else datetime.now(UTC),
        datacontenttype=datacontenttype,
        extensions=_extensions(headers),
    )


def text_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Headers with byte strings decoded, as trace propagators and handlers expect."""
    if not headers:
        return {}
    return {
        key: value.decode(errors="replace") if isinstance(value, bytes) else value
        for key, value in headers.items()
    }


def _decode_data(body: bytes, datacontenttype: str) -> Any:
    if not body:
        return None
    if is_json(datacontenttype):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body is not the JSON its content type says: {exc}") from exc
    return body


def _attribute(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(PREFIX + name)
    if value is None:
        value = headers.get(_ALT_PREFIX + name)
    if value is None or isinstance(value, str):
        return value
    return value.decode() if isinstance(value, bytes) else str(value)


def _extensions(headers: Mapping[str, Any]) -> dict[str, str]:
    extensions: dict[str, str] = {}
    for key, value in headers.items():
        if key.startswith((PREFIX, _ALT_PREFIX)):
            name = key[len(PREFIX) :]
            if name not in _CORE:
                extensions[name] = value if isinstance(value, str) else str(value)
    return extensions
