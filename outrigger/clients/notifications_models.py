"""What `NotificationsClient` returns: the hub's answers and the events of a subscription.

`Published` and `ChannelInfo` match the JSON the service answers field for field. A subscription
yields `Notification`s (the published messages) and, when history no longer reaches back to
where it resumed, one `Reset`: the messages in between are gone, reload what the channel stands
for and read on (the subscription goes on after the reset by itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Published:
    """Where a message landed: its history id (`<milliseconds>-<sequence>`, the `id:` its
    subscribers see), and whether that channel had it already (the same `id` published before,
    within the de-duplication window: nothing new was sent)."""

    channel: str
    id: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel now: connections following it on every replica, and the history kept of it
    (0 messages has no first or last id)."""

    channel: str
    subscribers: int
    length: int
    first_id: str | None
    last_id: str | None


@dataclass(frozen=True, slots=True)
class Notification:
    """One published message as a subscriber receives it: its history id, its event name and its
    data (any JSON value, decoded)."""

    id: str
    event: str
    data: Any


@dataclass(frozen=True, slots=True)
class Reset:
    """History no longer holds everything after the id a subscription resumed from (it was trimmed
    or aged out): messages were missed. The subscription continues live after `id` (the newest
    id of its channels when it resumed, also `resume_after`); reload the state the channels
    describe rather than rely on the messages."""

    id: str
    reason: str
    resume_after: str


Received = Notification | Reset
"""What a subscription yields."""
