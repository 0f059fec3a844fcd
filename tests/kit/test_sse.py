"""The SSE wire format: what `encode` writes, `frames` reads back, as EventSource would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from outrigger.sse import Frame, comment, encode, encode_json, frames

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def lines_of(stream: bytes) -> AsyncIterator[str]:
    for line in stream.decode().split("\n"):
        yield line


async def read(stream: bytes) -> list[Frame]:
    return [frame async for frame in frames(lines_of(stream))]


async def test_a_frame_reads_back_as_written() -> None:
    stream = encode(b'{"n":1}', id=7) + encode(b"{}", event="live") + comment("heartbeat")
    first, live, heartbeat = await read(stream)
    assert (first.id, first.event, first.json(), first.position) == ("7", None, {"n": 1}, 7)
    assert (live.id, live.event, live.data) == (None, "live", ["{}"])
    assert heartbeat.is_heartbeat
    assert heartbeat.comments == ["heartbeat"]
    assert not first.is_heartbeat


async def test_multi_line_data_is_one_data_line_each() -> None:
    stream = encode(b"one\ntwo\r\nthree\rfour", id="a")
    assert stream == b"id: a\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
    [frame] = await read(stream)
    assert frame.text == "one\ntwo\nthree\nfour"


async def test_json_frames_write_utc_times_with_z() -> None:
    stream = encode_json({"at": datetime(2026, 1, 2, tzinfo=UTC)}, id=1)
    [frame] = await read(stream)
    assert frame.json() == {"at": "2026-01-02T00:00:00Z"}


async def test_parsing_follows_the_event_stream_rules() -> None:
    stream = (
        b"data\n\n"  # a field with no colon has an empty value
        b"data:no space\nretry: 1500\nunknown: ignored\n\n"
        b"id: has\0nul\ndata: x\n\n"  # an id with NUL is ignored
        b"retry: 250\n\n"  # a reconnection time alone still applies
        b"data: unfinished"
    )
    empty, spaced, nul, retry = await read(stream)
    assert empty.data == [""]
    assert (spaced.data, spaced.retry) == (["no space"], 1500)
    assert nul.id is None
    assert (retry.retry, retry.is_heartbeat) == (250, True)
