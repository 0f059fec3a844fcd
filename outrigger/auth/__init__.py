"""JWT bearer authentication: token verification and minting, scopes per route, channel patterns.

Services protect routes with `require_scope(Scopes.EVENTS_READ)`; the verifier it uses lives at
`app.state.auth` (set by `outrigger.http.create_app`). `outrigger token` mints tokens with
`TokenIssuer.from_settings`. Keys: see `outrigger.auth.keys`.

The FastAPI dependencies (`require_scope`, `authorize`, `authenticate`, …) are imported
on first use, so a command that only mints tokens does not load FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from outrigger.auth.keys import NO_KEY_IN_PRODUCTION, SigningKey, VerificationKeys, thumbprint
from outrigger.auth.principal import (
    ALL_SCOPES,
    Principal,
    Scopes,
    channel_allowed,
    channel_matches,
)
from outrigger.auth.tokens import TokenIssuer, TokenVerifier, auth_from_settings

if TYPE_CHECKING:
    from outrigger.auth.dependencies import (
        ACCESS_TOKEN,
        BEARER,
        ScopeCheck,
        authenticate,
        authorize,
        bearer_token,
        require_scope,
        required_scopes,
        takes_query_token,
    )

_DEPENDENCIES = frozenset(
    {
        "ACCESS_TOKEN",
        "BEARER",
        "ScopeCheck",
        "authenticate",
        "authorize",
        "bearer_token",
        "require_scope",
        "required_scopes",
        "takes_query_token",
    }
)

__all__ = [
    "ACCESS_TOKEN",
    "ALL_SCOPES",
    "BEARER",
    "NO_KEY_IN_PRODUCTION",
    "Principal",
    "ScopeCheck",
    "Scopes",
    "SigningKey",
    "TokenIssuer",
    "TokenVerifier",
    "VerificationKeys",
    "auth_from_settings",
    "authenticate",
    "authorize",
    "bearer_token",
    "channel_allowed",
    "channel_matches",
    "require_scope",
    "required_scopes",
    "takes_query_token",
    "thumbprint",
]


def __getattr__(name: str) -> Any:
    if name in _DEPENDENCIES:
        return getattr(importlib.import_module("outrigger.auth.dependencies"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
