"""Bearer tokens for tests, signed with the key the service under test verifies with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.auth import ALL_SCOPES, TokenIssuer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outrigger.settings import Settings


def bearer(
    settings: Settings,
    *scopes: str,
    subject: str = "tester",
    channels: Sequence[str] | None = None,
    ttl: int = 300,
) -> dict[str, str]:
    """An `Authorization` header with `scopes` (every scope when none is named) and, if given,
    the `channels` claim."""
    issuer = TokenIssuer.from_settings(settings)
    token = issuer.mint(subject, list(scopes) or sorted(ALL_SCOPES), ttl, channels=channels)
    return {"Authorization": f"Bearer {token}"}
