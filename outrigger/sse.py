"""The Server-Sent Events wire format, both ways: `encode` for every SSE route, `frames` for the
SDK and the tests (WHATWG HTML, "Server-sent events", the event stream interpretation).

A frame is the fields before a blank line. `encode` writes `id`, `event`, `retry` and one `data`
line per line of the payload; `comment` writes a heartbeat. `frames` reads a stream's lines back
into `Frame`s, comment-only frames (heartbeats) included so a reader can see the stream is alive; a
client that wants messages only skips the frames whose `is_heartbeat` is true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def encode(
    data: bytes,
    *,
    id: int | str | None = None,
    event: str | None = None,
    retry: int | None = None,
) -> bytes:
    """One frame. `data` may hold newlines (each becomes a `data:` line); `id` and `event` must
    not (callers pass positions and fixed names). `retry` tells the client how many milliseconds
    to wait before it reconnects."""
    head = b""
    if id is not None:
        head += b"id: %s\n" % str(id).encode()
    if event is not None:
        head += b"event: %s\n" % event.encode()
    if retry is not None:
        head += b"retry: %d\n" % retry
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        return head + b"".join(b"data: %s\n" % line for line in lines) + b"\n"
    return head + b"data: %s\n\n" % data


def encode_json(
    document: Any,
    *,
    id: int | str | None = None,
    event: str | None = None,
    retry: int | None = None,
) -> bytes:
    """A frame whose data is `document` as compact JSON (datetimes as RFC 3339, UTC `Z`)."""
    return encode(orjson.dumps(document, option=orjson.OPT_UTC_Z), id=id, event=event, retry=retry)


def comment(text: str = "") -> bytes:
    """A comment frame: ignored by EventSource, it keeps proxies and clients from timing out."""
    return b": %s\n\n" % text.encode()


@dataclass(slots=True)
class Frame:
    """One frame as read: `event` None for an unnamed message (EventSource's "message")."""

    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.data)

    def json(self) -> Any:
        return orjson.loads(self.text)

    @property
    def position(self) -> int:
        """The `id` as an integer (streams that number their events by position)."""
        if self.id is None:
            raise ValueError(f"a frame without an id: {self}")
        return int(self.id)

    @property
    def is_heartbeat(self) -> bool:
        return not (self.data or self.event or self.id is not None)


async def frames(lines: AsyncIterator[str]) -> AsyncIterator[Frame]:
    """The frames of a stream, from its lines (as `httpx.Response.aiter_lines()` gives them).

    Unknown fields are ignored; a frame left unfinished when the lines end is not yielded. A frame
    that only sets `retry` is yielded too (EventSource applies it at once): it reads as a
    heartbeat.
    """
    frame = Frame()
    async for line in lines:
        if not line:
            fields = frame.data or frame.event or frame.id is not None or frame.retry is not None
            if fields or frame.comments:
                yield frame
            frame = Frame()
            continue
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if name == "":
            frame.comments.append(value)
        elif name == "data":
            frame.data.append(value)
        elif name == "event":
            frame.event = value
        elif name == "id" and "\0" not in value:
            frame.id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            frame.retry = int(value)
