"""FastAPI integration: `require_scope` reads the bearer token and checks one scope.

The verifier comes from `request.app.state.auth` (a `TokenVerifier`), which
`outrigger.http.create_app` sets in its lifespan; an app built by hand must set it itself. The
verified principal is kept on `request.state.principal`, so several checks verify once.
"""

from typing import Annotated, Any, Final

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outrigger.auth.principal import Principal
from outrigger.auth.tokens import TokenVerifier
from outrigger.errors import Forbidden, Unauthorized

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


def authenticate(request: Request) -> Principal:
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


def require_scope(scope: str) -> Any:
    """A dependency granting access to principals with `scope` (or `admin`); returns the principal.

    Use it on a route or router (`dependencies=[require_scope("events:read")]`) or as a
    parameter (`principal: Principal = require_scope("events:read")`). A missing or bad token is
    `Unauthorized` (401); a valid token without the scope is `Forbidden` (403) naming the scope.
    """

    async def authorize(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        principal = authenticate(request)
        if not principal.has_scope(scope):
            raise Forbidden(
                f"this route needs the {scope!r} scope, which the token does not grant",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
                required_scope=scope,
            )
        return principal

    return Security(authorize, scopes=[scope])
