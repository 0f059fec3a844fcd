"""The hub's use-case room: `NotificationsService` serves the API and the consumer; `Hub` feeds
this process's connections from history's live feed and keeps them."""

from services.notifications.usecases.connections import Connection, Limits
from services.notifications.usecases.hub import Hub
from services.notifications.usecases.service import (
    ChannelInfo,
    NotificationsService,
    check_draft,
    message_draft,
)

__all__ = [
    "ChannelInfo",
    "Connection",
    "Hub",
    "Limits",
    "NotificationsService",
    "check_draft",
    "message_draft",
]
