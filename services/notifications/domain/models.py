"""What the hub holds: messages in per-channel history, ordered by one history id across channels.

A history id is `<milliseconds>-<sequence>`, the form of a Redis stream id. The hub hands them out
in one increasing order across every channel of a deployment (not per channel, as Redis would), so
one id, the `Last-Event-ID` of a connection that follows several channels, says exactly what that
connection has seen: everything up to it, in every channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Final

from services.notifications.domain.errors import invalid_history_id

HISTORY_ID_PATTERN: Final = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})")
MAX_ID_PART: Final = 2**64 - 1


@total_ordering
@dataclass(frozen=True, slots=True)
class HistoryId:
    """A position in the hub's history: compares by (milliseconds, sequence)."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> HistoryId:
        """`"1765000000000-3"` → HistoryId; `InvalidInput` (400) naming the text otherwise."""
        match = HISTORY_ID_PATTERN.fullmatch(text)
        if match is None:
            raise invalid_history_id(text)
        ms, seq = int(match[1]), int(match[2])
        if ms > MAX_ID_PART or seq > MAX_ID_PART:
            raise invalid_history_id(text)
        return cls(ms, seq)

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, HistoryId):
            return NotImplemented
        return (self.ms, self.seq) < (other.ms, other.seq)


ORIGIN: Final = HistoryId(0, 0)  # before every message: `since=earliest` reads after it


@dataclass(frozen=True, slots=True)
class Message:
    """One message as history keeps it. `data` is the JSON text as published (compact, UTF-8),
    sent to subscribers as it is; `key` is the publisher's id for it, if it gave one."""

    id: HistoryId
    channel: str
    event: str
    data: bytes
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """A message to publish, checked by the use-case room: `channels` valid and distinct, `event`
    a valid name, `data` compact JSON within the size limit, `key` valid or None."""

    channels: tuple[str, ...]
    event: str
    data: bytes
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """Where a draft landed in one channel: its history id, and whether it was there already
    (the same `key` published to this channel before, within the de-duplication window)."""

    channel: str
    id: HistoryId
    duplicate: bool


@dataclass(frozen=True, slots=True)
class ChannelHistory:
    """What history holds of one channel now: 0 messages has no first or last id."""

    channel: str
    length: int
    first_id: HistoryId | None
    last_id: HistoryId | None


@dataclass(frozen=True, slots=True)
class Interrupted:
    """In the live feed: the feed was cut (the backend went away) and is back. Messages published
    meanwhile never came through it; whoever follows the feed reads them from history."""
