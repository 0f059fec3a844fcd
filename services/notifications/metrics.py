"""The hub's own metrics (prefix `outrigger_notifications_`), next to the kit's RED metrics per
route and `outrigger_sse_send_timeouts_total`.

`connections` is the gauge the HorizontalPodAutoscaler scales on. `delivery_seconds` runs from
a message's history id (its milliseconds, given when it was stored) to the moment this replica's
hub has offered it to every local stream that follows it: once per message per replica, not per
stream (what a stream then takes to send it is the client's side).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS: Final = Gauge(
    "outrigger_notifications_connections", "Server-Sent Event streams open on this replica."
)
PUBLISHED: Final = Counter(
    "outrigger_notifications_published_total",
    "Messages stored in a channel's history, by entry point (http, amqp).",
    ["via"],
)
DUPLICATES: Final = Counter(
    "outrigger_notifications_duplicates_total",
    "Publishes of a message id already stored in that channel (nothing stored again).",
    ["via"],
)
DELIVERIES: Final = Counter(
    "outrigger_notifications_deliveries_total", "Frames offered to streams (one per stream)."
)
DELIVERY_SECONDS: Final = Histogram(
    "outrigger_notifications_delivery_seconds",
    "From a message's history id to this replica's hub having offered it to its streams.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DROPPED_MESSAGES: Final = Counter(
    "outrigger_notifications_dropped_messages_total",
    "Frames a full stream queue dropped (slow-consumer policy drop-oldest).",
)
DISCONNECTS: Final = Counter(
    "outrigger_notifications_disconnects_total",
    "Streams the server closed, by reason (slow_consumer, send_timeout, shutdown).",
    ["reason"],
)
REPLAYED: Final = Counter(
    "outrigger_notifications_replayed_total",
    "Messages sent from history to a stream that resumed (Last-Event-ID, since=earliest).",
)
RESETS: Final = Counter(
    "outrigger_notifications_resets_total",
    "Streams that asked to resume after messages history no longer holds (event: reset).",
)
FEED_INTERRUPTIONS: Final = Counter(
    "outrigger_notifications_feed_interruptions_total",
    "Times the live feed was cut and the hub refilled from history.",
)
HISTORY_CHANNELS: Final = Gauge(
    "outrigger_notifications_history_channels", "Channels holding history (at the last trim)."
)
HISTORY_MESSAGES: Final = Gauge(
    "outrigger_notifications_history_messages",
    "Messages held in history, all channels (at the last trim).",
)
