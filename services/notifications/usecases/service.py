"""The hub's use cases: publish a message, open a subscription, describe a channel. Every
request passes here once, whatever carried it (HTTP, the bus).

A request is checked with the domain's rules before any port is called; the domain metrics are
counted here, and the audit records written: one per message published over HTTP, one per
subscription refused for a channel the token does not grant (not one per delivery).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from outrigger.auth import Scopes
from outrigger.errors import InvalidInput, TooLarge
from outrigger.sse import encode_json
from services.notifications.domain import (
    EVENT_NAME_PATTERN,
    KEY_PATTERN,
    MAX_DATA_BYTES,
    MAX_SUBSCRIPTION_CHANNELS,
    ORIGIN,
    RESERVED_EVENTS,
    Draft,
    HistoryId,
    channel_not_granted,
    check_channel,
    check_subscription,
    distinct,
    follows,
    granted,
)
from services.notifications.metrics import DUPLICATES, PUBLISHED, RESETS
from services.notifications.usecases.connections import Connection, Replay, position

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outrigger.audit_trail import AuditTrail
    from outrigger.auth import Principal
    from services.notifications.domain import ChannelHistory, History, Presence, Published
    from services.notifications.usecases.hub import Hub

_EVENT_NAME: Final = re.compile(EVENT_NAME_PATTERN)
_KEY: Final = re.compile(KEY_PATTERN)


def message_draft(channels: Sequence[str], event: str, data: Any, key: str | None = None) -> Draft:
    """A draft of `data` (any JSON document) as compact JSON; `publish` checks the rest."""
    try:
        encoded = orjson.dumps(data)
    except TypeError as exc:
        raise InvalidInput(f"the message's data is not JSON: {exc}") from None
    return Draft(tuple(channels), event, encoded, key)


def check_draft(draft: Draft) -> None:
    """Raises `InvalidInput` (or `TooLarge`) naming what is wrong with `draft`."""
    if not draft.channels:
        raise InvalidInput("a message goes to at least one channel")
    for channel in draft.channels:
        check_channel(channel)
    if len(distinct(draft.channels)) != len(draft.channels):
        raise InvalidInput(f"a channel is named twice in {list(draft.channels)!r}")
    if not _EVENT_NAME.fullmatch(draft.event) or draft.event in RESERVED_EVENTS:
        shown = draft.event if len(draft.event) <= 64 else draft.event[:61] + "..."
        raise InvalidInput(
            f"event name {shown!r} is not valid: 1-200 characters without whitespace or "
            f"control characters, and not {' or '.join(sorted(RESERVED_EVENTS))} (the hub's own)"
        )
    if draft.key is not None and not _KEY.fullmatch(draft.key):
        raise InvalidInput("a message id is 1-200 printable ASCII characters without spaces")
    if len(draft.data) > MAX_DATA_BYTES:
        raise TooLarge(
            f"the message's data is {len(draft.data):,} bytes of JSON; at most "
            f"{MAX_DATA_BYTES:,} are accepted",
            max_data_bytes=MAX_DATA_BYTES,
        )


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel now: what history keeps of it, and how many streams follow it (all replicas)."""

    history: ChannelHistory
    subscribers: int


@dataclass(frozen=True, slots=True)
class NotificationsService:
    history: History
    presence: Presence
    hub: Hub
    audit: AuditTrail

    async def publish(self, draft: Draft, *, via: str, actor: str | None = None) -> list[Published]:
        """Stores `draft` in each of its channels (a key published there within the
        de-duplication window is not stored again) and so feeds it to every subscriber.

        `via` names the entry point for the metrics (`http`, `amqp`); `actor`, when given (a
        caller over HTTP), is audited for each channel the message was stored in.
        """
        check_draft(draft)
        published = await self.history.publish(draft)
        for landed in published:
            (DUPLICATES if landed.duplicate else PUBLISHED).labels(via).inc()
        if actor is not None:
            for landed in published:
                if not landed.duplicate:
                    data = {"event": draft.event, "id": str(landed.id)}
                    await self.audit.record(
                        "publish", actor=actor, resource=landed.channel, data=data
                    )
        return published

    async def subscribe(
        self,
        caller: Principal,
        subscriptions: Sequence[str],
        *,
        last_event_id: str | None = None,
        since_earliest: bool = False,
    ) -> Connection:
        """A connection to the hub for `subscriptions` (channels and patterns), registered
        before history is looked at, so that nothing published meanwhile is missed.

        With `last_event_id`, it replays what history holds after that id, then goes live; if
        history has dropped some of it, the first frame is `event: reset` instead (with the
        newest id now, from which it goes live). `since_earliest`: replays all history keeps.
        Neither: live only. 422 for a bad channel or id, 403 naming a channel not granted.
        """
        wanted = distinct(subscriptions)
        if not wanted:
            raise InvalidInput("name at least one channel or pattern: ?channel=orders.created")
        if len(wanted) > MAX_SUBSCRIPTION_CHANNELS:
            raise InvalidInput(
                f"{len(wanted)} channels asked for; one stream follows at most "
                f"{MAX_SUBSCRIPTION_CHANNELS} (patterns count as one)"
            )
        for subscription in wanted:
            check_subscription(subscription)
        after = HistoryId.parse(last_event_id) if last_event_id is not None else None
        for subscription in wanted:
            if not granted(caller.channels, subscription):
                await self.audit.record(
                    "subscribe",
                    actor=caller.subject,
                    resource=subscription,
                    outcome="failure",
                    data={"channels": list(wanted), "reason": "channel not granted"},
                )
                raise channel_not_granted(subscription)
        if after is None and not since_earliest:
            connection = Connection(wanted, self.hub.limits, last=self.hub.last_position)
            self.hub.register(connection)
            return connection
        return await self._resume(wanted, after, reset=after is not None)

    async def _resume(
        self, wanted: tuple[str, ...], after: HistoryId | None, *, reset: bool
    ) -> Connection:
        start = after or ORIGIN
        replay = Replay(self.history, (), start)
        connection = Connection(wanted, self.hub.limits, last=position(start), replay=replay)
        self.hub.register(connection)
        try:
            channels = await self.history.channels(wanted)
            if reset and channels and await self.history.lost(channels, start):
                newest = await self._newest(channels, start)
                connection.go_live(position(newest), reset_frame(start, newest))
                RESETS.inc()
            else:
                replay.channels = channels
        except BaseException:
            connection.close("ended")
            raise
        return connection

    async def _newest(self, channels: Sequence[str], after: HistoryId) -> HistoryId:
        """The newest id `channels` keep now (`after` if they keep none)."""
        kept = await asyncio.gather(*(self.history.describe(name) for name in channels))
        return max((each.last_id for each in kept if each.last_id is not None), default=after)

    async def describe(self, caller: Principal, channel: str) -> ChannelInfo:
        """What history keeps of `channel` and its subscribers on every replica. A caller
        without `notify:publish` must hold a grant covering the channel (403 otherwise)."""
        check_channel(channel)
        if not caller.has_scope(Scopes.NOTIFY_PUBLISH) and not granted(caller.channels, channel):
            raise channel_not_granted(channel)
        await self.hub.report_presence()  # this replica's counts as they are now
        kept, counts = await asyncio.gather(self.history.describe(channel), self.presence.counts())
        followers = sum(count for sub, count in counts.items() if follows(sub, channel))
        return ChannelInfo(kept, followers)


def reset_frame(after: HistoryId, newest: HistoryId) -> bytes:
    """`event: reset`: history no longer holds everything after `after`; the stream goes on
    live after `newest`, which the client resumes from once it has reloaded."""
    reason = (
        f"history no longer holds every message after {after}: reload what you show, then "
        "carry on from this stream"
    )
    document = {"reason": reason, "resume_after": str(newest)}
    return encode_json(document, id=str(newest), event="reset")
