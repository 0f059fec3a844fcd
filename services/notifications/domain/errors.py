"""The notifications domain's errors, as the kit's problem types (RFC 9457 at the edge)."""

from __future__ import annotations

from outrigger.errors import Forbidden, InvalidInput


def invalid_history_id(text: str) -> InvalidInput:
    shown = text if len(text) <= 64 else text[:61] + "..."
    return InvalidInput(
        f"history id {shown!r} is not an id this hub gave: expected <milliseconds>-<sequence>, "
        "as in the id: field of an event"
    )


def invalid_channel(channel: str, *, pattern: bool = False) -> InvalidInput:
    what = "channel pattern" if pattern else "channel"
    shown = channel if len(channel) <= 64 else channel[:61] + "..."
    extra = "; '*' stands for one segment and a final '>' for the rest" if pattern else ""
    return InvalidInput(
        f"{what} {shown!r} is not valid: expected 1-256 characters, segments of "
        f"A-Z a-z 0-9 _ - : separated by dots{extra}"
    )


def channel_not_granted(channel: str) -> Forbidden:
    return Forbidden(
        f"the token's channels claim grants no subscription to {channel!r}; ask for a token "
        "whose channels cover it"
    )
