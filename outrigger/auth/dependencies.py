"""FastAPI integration: `require_scope` reads the bearer token and checks one scope.

The verifier comes from `request.app.state.auth` (a `TokenVerifier`), which
`outrigger.http.create_app` sets in its lifespan; an app built by hand must set it itself. The
verified principal is kept on `request.state.principal`, so several checks verify once.

A route of the kit's route class (`outrigger.http.ServiceRoute`) finds its `require_scope`
declarations (`required_scopes`) and checks them before FastAPI reads the body or validates a
parameter, so a caller without a token gets 401, and one without the scope 403, whatever it sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outrigger.auth.principal import Principal
from outrigger.auth.tokens import TokenVerifier
from outrigger.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from fastapi.dependencies.models import Dependant
    from starlette.requests import HTTPConnection

BEARER: Final = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A JWT from the platform's issuer (`outrigger token` mints one in development).",
)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or `Unauthorized`."""
    if not authorization or not authorization.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return token.strip()


def authenticate(request: HTTPConnection) -> Principal:
    """The principal of the request's bearer token, verified once per request."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    verifier = getattr(request.app.state, "auth", None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("app.state.auth must hold a TokenVerifier (create_app sets it)")
    principal = verifier.verify(bearer_token(request.headers.get("authorization")))
    request.state.principal = principal
    return principal


def authorize(request: HTTPConnection, scope: str) -> Principal:
    """The request's principal if it holds `scope` (or `admin`): else 401, or 403 naming it."""
    principal = authenticate(request)
    if not principal.has_scope(scope):
        raise Forbidden(
            f"this route needs the {scope!r} scope, which the token does not grant",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            required_scope=scope,
        )
    return principal


class ScopeCheck:
    """The dependency `require_scope` declares: grants principals holding `scope`."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        return authorize(request, self.scope)


def require_scope(scope: str) -> Any:
    """A dependency granting access to principals with `scope` (or `admin`); returns the principal.

    Use it on a route or router (`dependencies=[require_scope("events:read")]`) or as a
    parameter (`principal: Principal = require_scope("events:read")`). A missing or bad token is
    `Unauthorized` (401); a valid token without the scope is `Forbidden` (403) naming the scope.
    """
    return Security(ScopeCheck(scope), scopes=[scope])


def required_scopes(dependant: Dependant) -> tuple[str, ...]:
    """Every scope the route's `require_scope` declarations demand, in declaration order."""
    found: list[str] = []
    pending = list(dependant.dependencies)
    while pending:
        sub = pending.pop(0)
        if isinstance(sub.call, ScopeCheck) and sub.call.scope not in found:
            found.append(sub.call.scope)
        pending.extend(sub.dependencies)
    return tuple(found)
