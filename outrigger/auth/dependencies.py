"""FastAPI integration: `require_scope` reads the bearer token and checks one scope.

The verifier comes from `request.app.state.auth` (a `TokenVerifier`), which
`outrigger.http.create_app` sets in its lifespan; an app built by hand must set it itself. The
verified principal is kept on `request.state.principal`, so several checks verify once.

A route of the kit's route class (`outrigger.http.ServiceRoute`) finds its `require_scope`
declarations (`scope_checks`) and checks them before FastAPI reads the body or validates a
parameter, so a caller without a token gets 401, and one without the scope 403, whatever it sent.

A browser's `EventSource` cannot send a header, so a route may also take the token as the query
parameter `access_token` (RFC 6750 §2.3), when it says so: `require_scope(scope,
query_token=True)` (or `RequestRoute(..., query_token=True)`). No other route reads it. A header,
when sent, wins. The kit logs no query string (see `outrigger.http.middleware`), and traces show
the token as `REDACTED`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import Depends, Query, Request, Security
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


ACCESS_TOKEN: Final = "access_token"
"""The query parameter that carries the token on the routes that accept one there."""


def bearer_token(authorization: str | None, *, query_token: str | None = None) -> str:
    """The token of an `Authorization: Bearer <token>` header, else `query_token` (the
    `access_token` of a route that accepts one), or `Unauthorized`."""
    if (not authorization or not authorization.strip()) and query_token:
        return query_token
    if not authorization or not authorization.strip():
        also = f" or ?{ACCESS_TOKEN}=<token>" if query_token is not None else ""
        raise Unauthorized(f"missing bearer token: send 'Authorization: Bearer <token>'{also}")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return token.strip()


def authenticate(request: HTTPConnection, *, query_token: bool = False) -> Principal:
    """The principal of the request's bearer token (or, with `query_token`, of its
    `access_token` parameter when no header is sent), verified once per request."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    verifier = getattr(request.app.state, "auth", None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("app.state.auth must hold a TokenVerifier (create_app sets it)")
    in_query = request.query_params.get(ACCESS_TOKEN, "") if query_token else None
    principal = verifier.verify(
        bearer_token(request.headers.get("authorization"), query_token=in_query)
    )
    request.state.principal = principal
    return principal


def authorize(request: HTTPConnection, scope: str, *, query_token: bool = False) -> Principal:
    """The request's principal if it holds `scope` (or `admin`): else 401, or 403 naming it.
    `query_token`: the token may come as `?access_token=` (module docstring)."""
    principal = authenticate(request, query_token=query_token)
    if not principal.has_scope(scope):
        raise Forbidden(
            f"this route needs the {scope!r} scope, which the token does not grant",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            required_scope=scope,
        )
    return principal


class ScopeCheck:
    """The dependency `require_scope` declares: grants principals holding `scope`."""

    query_token: bool = False

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        return authorize(request, self.scope)


ACCESS_TOKEN_DESCRIPTION: Final = (
    "The bearer token, for clients that cannot send a header (a browser's EventSource); "
    "the Authorization header wins when both are sent."
)


class QueryTokenScopeCheck(ScopeCheck):
    """`ScopeCheck` on a route that also takes the token as `?access_token=` (documented)."""

    query_token = True

    async def __call__(
        self,
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        access_token: Annotated[  # read by `authorize`; declared for the OpenAPI document
            str | None, Query(alias=ACCESS_TOKEN, description=ACCESS_TOKEN_DESCRIPTION)
        ] = None,
    ) -> Principal:
        return authorize(request, self.scope, query_token=True)


def require_scope(scope: str, *, query_token: bool = False) -> Any:
    """A dependency granting access to principals with `scope` (or `admin`); returns the principal.

    Use it on a route or router (`dependencies=[require_scope("events:read")]`) or as a
    parameter (`principal: Principal = require_scope("events:read")`). A missing or bad token is
    `Unauthorized` (401); a valid token without the scope is `Forbidden` (403) naming the scope.
    `query_token=True`: this route also takes the token as `?access_token=` (module docstring).
    """
    check = QueryTokenScopeCheck(scope) if query_token else ScopeCheck(scope)
    return Security(check, scopes=[scope])


def scope_checks(dependant: Dependant) -> list[ScopeCheck]:
    """The route's `require_scope` declarations, in declaration order."""
    found: list[ScopeCheck] = []
    pending = list(dependant.dependencies)
    while pending:
        sub = pending.pop(0)
        if isinstance(sub.call, ScopeCheck):
            found.append(sub.call)
        pending.extend(sub.dependencies)
    return found


def required_scopes(dependant: Dependant) -> tuple[str, ...]:
    """Every scope the route's `require_scope` declarations demand, in declaration order."""
    return tuple(dict.fromkeys(check.scope for check in scope_checks(dependant)))


def takes_query_token(dependant: Dependant) -> bool:
    """Whether one of the route's `require_scope` declarations accepts `?access_token=`: the
    route then does, for every scope it checks."""
    return any(check.query_token for check in scope_checks(dependant))
