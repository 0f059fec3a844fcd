"""The hub's HTTP API under `/v1`: publish to a channel, describe one, subscribe (SSE).

`ROUTES` are served ahead of the routers, at the app's top level: the subscription, whose stream
keeps everything its request passed through for as long as it lasts (see the kit's
`RequestRoute`).
"""

from services.notifications.api import channels, subscriptions

ROUTERS = (channels.router,)
ROUTES = (subscriptions.SUBSCRIBE,)

__all__ = ["ROUTERS", "ROUTES"]
