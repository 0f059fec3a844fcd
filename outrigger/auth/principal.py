"""Who a verified token speaks for: its subject, scopes and channel patterns.

Channel patterns (the `channels` claim) match dotted channel names segment by segment. Within a
segment, shell-style wildcards apply (`*`, `?`, `[abc]`) and never cross a dot. A final `**`
segment grants the whole subtree: `orders.**` matches `orders`, `orders.eu` and `orders.eu.created`,
and `**` alone matches every channel. Anywhere else `**` behaves like `*`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final

from outrigger.errors import Unauthorized


class Scopes:
    """The scope names of ARCHITECTURE §6. `ADMIN` satisfies every scope."""

    EVENTS_READ: Final = "events:read"
    EVENTS_WRITE: Final = "events:write"
    EVENTS_REVEAL: Final = "events:reveal"
    AUDIT_READ: Final = "audit:read"
    AUDIT_WRITE: Final = "audit:write"
    AUDIT_REVEAL: Final = "audit:reveal"
    CACHE_READ: Final = "cache:read"
    CACHE_WRITE: Final = "cache:write"
    LOCKS_WRITE: Final = "locks:write"
    NOTIFY_PUBLISH: Final = "notify:publish"
    NOTIFY_SUBSCRIBE: Final = "notify:subscribe"
    PLUGINS_RUN: Final = "plugins:run"
    PLUGINS_ADMIN: Final = "plugins:admin"
    ADMIN: Final = "admin"


ALL_SCOPES: Final[frozenset[str]] = frozenset(
    value for name, value in vars(Scopes).items() if name.isupper()
)

SUBTREE: Final = "**"


@dataclass(frozen=True)
class Principal:
    """The verified caller. `claims` holds every claim of the token, as sent."""

    subject: str
    scopes: frozenset[str] = frozenset()
    channels: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or Scopes.ADMIN in self.scopes

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        """Reads `sub`, `scope` (space-separated) or `scopes` (a list), and `channels`."""
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("malformed token: the sub claim must be a non-empty string")
        scopes: set[str] = set()
        scope = claims.get("scope")
        if scope is not None:
            if not isinstance(scope, str):
                raise Unauthorized(
                    "malformed token: the scope claim must be a space-separated string"
                )
            scopes.update(scope.split())
        if "scopes" in claims:
            scopes.update(_strings(claims["scopes"], "scopes"))
        channels = tuple(_strings(claims["channels"], "channels")) if "channels" in claims else ()
        return cls(subject, frozenset(scopes), channels, dict(claims))


def _strings(value: Any, claim: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Unauthorized(f"malformed token: the {claim} claim must be a list of strings")
    return value


def channel_matches(pattern: str, channel: str) -> bool:
    """Whether one channel pattern covers `channel` (see the module docstring for the rule)."""
    wanted = pattern.split(".")
    parts = channel.split(".")
    if wanted[-1] == SUBTREE:
        wanted = wanted[:-1]
        if len(parts) < len(wanted):
            return False
        parts = parts[: len(wanted)]
    elif len(parts) != len(wanted):
        return False
    return all(fnmatchcase(part, glob) for part, glob in zip(parts, wanted, strict=True))


def channel_allowed(principal: Principal, channel: str) -> bool:
    """Whether any pattern of the principal's `channels` claim covers `channel`.

    A token without a `channels` claim grants no channel, whatever its scopes.
    """
    if not channel or any(not part for part in channel.split(".")):
        return False
    return any(channel_matches(pattern, channel) for pattern in principal.channels)
