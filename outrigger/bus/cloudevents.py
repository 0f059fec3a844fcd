"""CloudEvents 1.0 in AMQP 0-9-1 binary mode, the one envelope every adapter writes and reads.

The body is `data`, `content_type` is `datacontenttype`, `message_id` is `id`; every other
attribute and extension travels as a `cloudEvents_<name>` header, `id` too. Reading, the
spellings other SDKs send are accepted as well: `cloudEvents:<name>` (the AMQP binding's
older prefix), `ce_<name>` (Kafka's) and `ce-<name>` (HTTP's, and the RabbitMQ binding's), in
that order of precedence when one attribute comes in several; `time` may be any RFC 3339
date-time.

The official `cloudevents` SDK is not used: its bindings build its own event class (the port
has a frozen dataclass), read one spelling each (`ce-` for RabbitMQ, `cloudEvents_` for AMQP
1.0, whose typed properties AMQP 0-9-1 lacks) and would add a conversion per message and two
dependencies for what fits in this module.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from outrigger.bus.port import JSON, SPECVERSION, CloudEvent

if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "cloudEvents_"
_PREFIX_LENGTH = len(PREFIX)
_OTHER_PREFIXES = ("cloudEvents:", "ce_", "ce-")
_CORE = frozenset({"specversion", "id", "type", "source", "subject", "time", "datacontenttype"})
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


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


def encode_headers(event: CloudEvent, trace_headers: Mapping[str, str] | None) -> dict[str, Any]:
    """The `cloudEvents_*` headers of `event`, plus the trace context headers."""
    headers: dict[str, Any] = {
        "cloudEvents_specversion": SPECVERSION,
        "cloudEvents_id": event.id,
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
    attributes = _attributes(headers)
    specversion = attributes.pop("specversion", None)
    if specversion != SPECVERSION:
        raise ValueError(f"not a CloudEvents {SPECVERSION} message (specversion {specversion!r})")
    event_id = message_id or attributes.pop("id", None)
    event_type, source = attributes.pop("type", None), attributes.pop("source", None)
    if not event_id or not event_type or not source:
        raise ValueError("a CloudEvent needs an id (message_id), a type and a source")
    time = attributes.pop("time", None)
    datacontenttype = content_type or attributes.pop("datacontenttype", None) or JSON
    subject = attributes.pop("subject", None)
    for name in _CORE:
        attributes.pop(name, None)
    return CloudEvent(
        id=event_id,
        source=source,
        type=event_type,
        data=_decode_data(body, datacontenttype),
        subject=subject,
        time=parse_time(time) if time else datetime.now(UTC),
        datacontenttype=datacontenttype,
        extensions=attributes,
    )


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time: `T`, `t` or a space between date and time, any number of second
    fractions (kept to microseconds), `Z`, `z` or an offset, a leap second (the next second).
    Raises ValueError for anything else, a date-time without offset among them."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"time {text!r} is not an RFC 3339 date-time such as 2026-11-21T08:00:00Z")
    if match[6] != "60" and len(match[7] or "") <= 6:
        with contextlib.suppress(ValueError):  # the common case, in C; else parsed below
            return datetime.fromisoformat(text)
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    fraction, zulu, sign, offset_hours, offset_minutes = match.group(7, 8, 9, 10, 11)
    tz: timezone = UTC
    if not zulu:
        offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
        tz = timezone(-offset if sign == "-" else offset)
    microsecond = int(fraction[:6].ljust(6, "0")) if fraction else 0
    leap = second == 60
    try:
        time = datetime(year, month, day, hour, minute, 59 if leap else second, microsecond, tz)
    except ValueError as exc:
        raise ValueError(f"time {text!r} is not a valid date-time: {exc}") from exc
    return time + timedelta(seconds=1) if leap else time


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


def _attributes(headers: Mapping[str, Any]) -> dict[str, str]:
    """Every CloudEvents attribute in `headers`, by name, the preferred spelling winning."""
    found: dict[str, tuple[int, str]] = {}
    for key, value in headers.items():
        if key.startswith(PREFIX) and len(key) > _PREFIX_LENGTH:  # the preferred spelling
            found[key[_PREFIX_LENGTH:]] = (0, value if isinstance(value, str) else _text(value))
            continue
        named = _attribute_name(key)
        if named is not None:
            preference, name = named
            if name not in found or preference < found[name][0]:
                found[name] = (preference, _text(value))
    return {name: value for name, (_, value) in found.items()}


def _attribute_name(header: str) -> tuple[int, str] | None:
    """(preference, attribute name) of a CloudEvents header, None for any other header."""
    if header.startswith(PREFIX):
        return (0, header[len(PREFIX) :]) if len(header) > len(PREFIX) else None
    for preference, prefix in enumerate(_OTHER_PREFIXES, 1):
        if len(header) > len(prefix) and header[: len(prefix)].lower() == prefix.lower():
            name = header[len(prefix) :]
            # ce_ and ce-: HTTP's header names, case-insensitive, which other SDKs reuse
            return preference, name if preference == 1 else name.lower()
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return value.decode() if isinstance(value, bytes) else str(value)
