"""The notifications hub's domain: models, rules, errors and the port. No I/O lives here."""

from services.notifications.domain.errors import (
    channel_not_granted,
    invalid_channel,
    invalid_history_id,
)
from services.notifications.domain.models import (
    ORIGIN,
    ChannelHistory,
    Draft,
    HistoryId,
    Interrupted,
    Message,
    Published,
)
from services.notifications.domain.port import History, Presence
from services.notifications.domain.rules import (
    CHANNEL_PATTERN,
    EVENT_NAME_PATTERN,
    KEY_PATTERN,
    MAX_CHANNEL_LENGTH,
    MAX_DATA_BYTES,
    MAX_SUBSCRIPTION_CHANNELS,
    RESERVED_EVENTS,
    SUBSCRIPTION_PATTERN,
    check_channel,
    check_subscription,
    distinct,
    follows,
    granted,
    is_pattern,
)

__all__ = [
    "CHANNEL_PATTERN",
    "EVENT_NAME_PATTERN",
    "KEY_PATTERN",
    "MAX_CHANNEL_LENGTH",
    "MAX_DATA_BYTES",
    "MAX_SUBSCRIPTION_CHANNELS",
    "ORIGIN",
    "RESERVED_EVENTS",
    "SUBSCRIPTION_PATTERN",
    "ChannelHistory",
    "Draft",
    "History",
    "HistoryId",
    "Interrupted",
    "Message",
    "Presence",
    "Published",
    "channel_not_granted",
    "check_channel",
    "check_subscription",
    "distinct",
    "follows",
    "granted",
    "invalid_channel",
    "invalid_history_id",
    "is_pattern",
]
