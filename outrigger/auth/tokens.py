"""`TokenVerifier` turns a bearer token into a `Principal`; `TokenIssuer` mints tokens."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Final

import jwt
from jwt.exceptions import InvalidSubjectError

from outrigger.auth.keys import (
    SigningKey,
    VerificationKeys,
    VerifyingKey,
    signing_key,
    verification_keys,
)
from outrigger.auth.principal import Principal
from outrigger.errors import Unauthorized
from outrigger.settings import PREFIX, SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from outrigger.settings import Settings

VERIFIED_TOKENS_KEPT: Final = 10_000
REQUIRED_CLAIMS: Final = ["exp", "iss", "sub"]
REGISTERED_CLAIMS: Final = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope"})
INVALID_TOKEN: Final = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
TIME_CLAIMS: Final = ("exp", "iat", "nbf")
# RFC 7519 NumericDates past 9999-12-31 are no real time: refused before any arithmetic on them
LATEST_NUMERIC_DATE: Final = 253_402_300_799


def _rejected(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers=dict(INVALID_TOKEN))


class TokenVerifier:
    """Checks a token's signature (with the one configured algorithm), `exp`, `iss` and `aud`."""

    def __init__(
        self,
        keys: VerificationKeys,
        *,
        issuer: str,
        audience: str | None = None,
        leeway_seconds: float = 0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        # token -> (expiry, principal): a token seen before costs a dict lookup, not a decode
        self._verified: dict[str, tuple[float, Principal]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        return cls(
            verification_keys(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
        )

    @property
    def algorithm(self) -> str:
        return self.keys.algorithm

    def verify(self, token: str | None) -> Principal:
        """The principal the token speaks for, or `Unauthorized` saying what is wrong with it."""
        if not token:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[0]:
                return known[1]
            del self._verified[token]
        principal = self._decode(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (float(principal.claims["exp"]) + self.leeway_seconds, principal)
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise _rejected("malformed token: expected a JWT (header.payload.signature)") from None
        if header.get("alg") != self.algorithm:
            raise _rejected(f"token algorithm not accepted: this service expects {self.algorithm}")
        key = self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": REQUIRED_CLAIMS, "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise _rejected(self._reason(exc)) from None
        _check_time_claims(claims)
        try:
            return Principal.from_claims(claims)
        except Unauthorized as exc:
            raise _rejected(exc.detail) from None

    def _key(self, kid: Any) -> VerifyingKey:
        if self.keys.default is not None:
            return self.keys.default
        if kid is None and len(self.keys.by_kid) == 1:
            return next(iter(self.keys.by_kid.values()))
        if kid is None:
            raise _rejected("token has no kid header, and the key set holds several keys")
        key = self.keys.by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _rejected(f"unknown token key id {str(kid)[:64]!r}")
        return key

    def _reason(self, exc: jwt.PyJWTError) -> str:
        if isinstance(exc, jwt.ExpiredSignatureError):
            return "token expired"
        if isinstance(exc, jwt.ImmatureSignatureError):
            return "token not valid yet (nbf is in the future)"
        if isinstance(exc, jwt.InvalidSignatureError):
            return "bad token signature"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"wrong token issuer: expected {self.issuer!r}"
        if isinstance(exc, jwt.InvalidAudienceError):
            return f"wrong token audience: expected {self.audience!r}"
        if isinstance(exc, InvalidSubjectError):
            return "malformed token: the sub claim must be a string"
        if isinstance(exc, jwt.InvalidIssuedAtError):
            return "malformed token: the iat claim must be a number"
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"malformed token: the {exc.claim} claim is missing"
        if isinstance(exc, jwt.DecodeError) and "claim" in str(exc):
            return f"malformed token: {str(exc).rstrip('.')}"
        if isinstance(exc, jwt.DecodeError):
            return "malformed token: expected a JWT (header.payload.signature)"
        return "invalid token"


def _check_time_claims(payload: dict[str, Any]) -> None:
    """Refuses exp, iat and nbf values that are not NumericDates of this era (10**400, inf...)."""
    for name in TIME_CLAIMS:
        value = payload.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= LATEST_NUMERIC_DATE
        ):
            raise _rejected(
                f"malformed token: the {name} claim must be a time in seconds since 1970, "
                "before the year 10000"
            )


class TokenIssuer:
    """Mints tokens that a `TokenVerifier` built from the same settings accepts."""

    def __init__(self, key: SigningKey, *, issuer: str, audience: str | None = None) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenIssuer:
        key = signing_key(settings)
        if key is None:
            raise SettingsError(
                f"{PREFIX}JWT_PRIVATE_KEY_FILE: minting RS256 tokens needs the private key"
            )
        return cls(key, issuer=settings.jwt_issuer, audience=settings.jwt_audience)

    def mint(
        self,
        subject: str,
        scopes: Iterable[str],
        ttl_seconds: int,
        channels: Iterable[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed token for `subject` with `scopes`, valid for `ttl_seconds` from now."""
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        clash = REGISTERED_CLAIMS.intersection(extra or {})
        if clash:
            raise ValueError(f"extra claims may not set {', '.join(sorted(clash))}")
        now = int(time.time())
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": self.issuer,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(sorted(set(scopes))),
        }
        if self.audience is not None:
            claims["aud"] = self.audience
        if channels is not None:
            claims["channels"] = list(channels)
        headers = {"kid": self.key.kid} if self.key.kid else None
        return jwt.encode(claims, self.key.key, algorithm=self.key.algorithm, headers=headers)


def auth_from_settings(settings: Settings) -> tuple[TokenVerifier, TokenIssuer | None]:
    """The verifier, and the issuer when the settings hold a signing key (not just public keys)."""
    verifier = TokenVerifier.from_settings(settings)
    key = signing_key(settings)
    if key is None:
        return verifier, None
    return verifier, TokenIssuer(key, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
