"""Adapters of the hub's ports: `redis` (production) and `memory` (embedded, same contract).

`build_history` picks one backend from `OUTRIGGER_REDIS_URL`; the app calls it inside its
lifespan, then `await history.start()` and, on shutdown, `await history.close()` (which also
ends the presence store, since it shares the history's backend).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.notifications.domain import History, Presence


class HistorySettings(Protocol):
    """What `build_history` reads (`NotificationsSettings` has it)."""

    @property
    def redis_url(self) -> str: ...
    @property
    def notifications_key_prefix(self) -> str: ...
    @property
    def notifications_history_max_length(self) -> int: ...
    @property
    def notifications_history_max_age_seconds(self) -> float: ...
    @property
    def notifications_dedupe_seconds(self) -> float: ...


def build_history(settings: HistorySettings) -> tuple[History, Presence]:
    """History and presence as the settings name them: in memory for `memory://`, else on the
    Redis at that URL (`redis://`, `rediss://`, `unix://`)."""
    length = settings.notifications_history_max_length
    age = settings.notifications_history_max_age_seconds
    dedupe = settings.notifications_dedupe_seconds
    if settings.redis_url.startswith("memory://"):
        from services.notifications.adapters.memory import MemoryHistory, MemoryPresence

        memory = MemoryHistory(max_length=length, max_age_seconds=age, dedupe_seconds=dedupe)
        return memory, MemoryPresence()
    from services.notifications.adapters.redis import RedisHistory, RedisPresence

    prefix = settings.notifications_key_prefix
    history = RedisHistory(
        settings.redis_url,
        key_prefix=prefix,
        max_length=length,
        max_age_seconds=age,
        dedupe_seconds=dedupe,
    )
    return history, RedisPresence(history.redis, prefix)
