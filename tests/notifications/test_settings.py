"""The hub's settings: what a deployment gets without setting anything, and what it may set."""

from __future__ import annotations

import pytest

from outrigger.settings import SettingsError, load_settings
from services.notifications.settings import NotificationsSettings


def test_the_defaults_are_those_of_a_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OUTRIGGER_HTTP_MAX_CONNECTIONS", "OUTRIGGER_NOTIFICATIONS_QUEUE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(NotificationsSettings)
    assert settings.http_max_connections == 20_000
    assert settings.notifications_heartbeat_seconds == 15
    assert settings.notifications_send_timeout_seconds == 10
    assert settings.notifications_queue_size == 1000
    assert settings.notifications_slow_consumer_policy == "disconnect"
    assert settings.notifications_ingest_events is False
    assert settings.notifications_key_prefix == "on"


def test_a_bad_policy_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTRIGGER_NOTIFICATIONS_SLOW_CONSUMER_POLICY", "wait")
    with pytest.raises(SettingsError, match="OUTRIGGER_NOTIFICATIONS_SLOW_CONSUMER_POLICY"):
        load_settings(NotificationsSettings)
    monkeypatch.setenv("OUTRIGGER_NOTIFICATIONS_SLOW_CONSUMER_POLICY", "drop-oldest")
    assert load_settings(NotificationsSettings).notifications_slow_consumer_policy == "drop-oldest"
