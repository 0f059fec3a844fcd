"""The hub's rules: channel names, subscription patterns and what a token's grants cover.

A channel is dotted segments of `A-Z a-z 0-9 _ - :` (`orders.eu.created`, `jobs.7f3c`,
`streams.order-7`), at most 256 characters. A subscription names channels or patterns: `*`
stands for exactly one segment and a final `>` for one or more (`orders.*` follows
`orders.created`, not `orders.eu.created`; `orders.>` follows both).

A token's `channels` claim holds grants in the kit's pattern language (`outrigger.auth`: shell
globs within a segment, a final `**` for a whole subtree). A subscription is allowed when some
grant covers every channel it could ever deliver: a channel by `channel_matches`, `*` only by a
grant segment that is `*` itself (or inside a `**` subtree), `>` only by a `**` subtree.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from outrigger.auth import channel_matches
from outrigger.auth.principal import SUBTREE
from services.notifications.domain.errors import invalid_channel

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

MAX_CHANNEL_LENGTH: Final = 256
MAX_SUBSCRIPTION_CHANNELS: Final = 32
MAX_DATA_BYTES: Final = 64 * 1024
ONE: Final = "*"
REST: Final = ">"

SEGMENT: Final = r"[A-Za-z0-9_:\-]+"
CHANNEL_PATTERN: Final = rf"^{SEGMENT}(\.{SEGMENT})*$"
"""Channel names, as JSON Schema and Python read them alike."""
SUBSCRIPTION_PATTERN: Final = rf"^({SEGMENT}|\*)(\.({SEGMENT}|\*))*(\.>)?$|^>$"
EVENT_NAME_PATTERN: Final = (
    r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]{1,200}$"
)
"""Event names (the SSE `event:` field): no whitespace or control character, as the event store's
event types; `reset` and `shutdown` are the hub's own."""
KEY_PATTERN: Final = r"^[\x21-\x7e]{1,200}$"
"""Publishers' message ids (de-duplication keys): printable ASCII, no spaces."""
RESERVED_EVENTS: Final = frozenset({"reset", "shutdown"})

_CHANNEL = re.compile(CHANNEL_PATTERN)
_SUBSCRIPTION = re.compile(SUBSCRIPTION_PATTERN)


def check_channel(channel: str) -> str:
    """The channel, or `InvalidInput` (400) saying what a channel looks like."""
    if len(channel) > MAX_CHANNEL_LENGTH or not _CHANNEL.fullmatch(channel):
        raise invalid_channel(channel)
    return channel


def check_subscription(pattern: str) -> str:
    """A channel or a pattern (`*` segments, a final `>`), or `InvalidInput` (400)."""
    if len(pattern) > MAX_CHANNEL_LENGTH or not _SUBSCRIPTION.fullmatch(pattern):
        raise invalid_channel(pattern, pattern=True)
    return pattern


def is_pattern(subscription: str) -> bool:
    parts = subscription.split(".")
    return ONE in parts or parts[-1] == REST


def follows(subscription: str, channel: str) -> bool:
    """Whether a subscription (a channel or a pattern) delivers messages of `channel`."""
    wanted = subscription.split(".")
    parts = channel.split(".")
    if wanted[-1] == REST:
        wanted = wanted[:-1]
        if len(parts) <= len(wanted):
            return False
        parts = parts[: len(wanted)]
    elif len(parts) != len(wanted):
        return False
    return all(want in (ONE, part) for want, part in zip(wanted, parts, strict=True))


def granted(grants: Iterable[str], subscription: str) -> bool:
    """Whether one of the token's grants covers every channel `subscription` can deliver."""
    return any(_covers(grant, subscription) for grant in grants)


def _covers(grant: str, subscription: str) -> bool:
    if not is_pattern(subscription):
        return channel_matches(grant, subscription)
    have = grant.split(".")
    wanted = subscription.split(".")
    subtree = have[-1] == SUBTREE
    if subtree:
        have = have[:-1]
    for index, want in enumerate(wanted):
        if index >= len(have):
            return subtree  # the rest of `wanted`, `>` included, lies inside the subtree
        if want == REST:
            return False  # `>` reaches deeper than a grant without `**` at this depth
        if want == ONE:
            if have[index] not in (ONE, SUBTREE):
                return False
        elif not channel_matches(have[index], want):
            return False
    return len(wanted) == len(have) or subtree


def distinct(subscriptions: Sequence[str]) -> tuple[str, ...]:
    """The subscriptions in their order, each once."""
    return tuple(dict.fromkeys(subscriptions))
