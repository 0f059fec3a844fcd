"""Key material for signing and verifying tokens, read from the settings.

One algorithm per deployment: HS256 with `OUTRIGGER_JWT_SECRET`, or RS256 with a private key (to
mint) and a public key or a JWKS file (to verify; with only the private key, its public half is
used). With no key at all, outside production, both sides share a random development secret kept
in `<data_dir>/dev-jwt-secret`.

RS256 tokens carry the RFC 7638 thumbprint of their key as `kid`; a JWKS verifier picks its key by
`kid`, so name keys in the JWKS by their thumbprint (`thumbprint()`) or mint with the same `kid`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from outrigger import devsecrets
from outrigger.settings import PREFIX, SettingsError

if TYPE_CHECKING:
    from pathlib import Path

    from outrigger.settings import Settings

Algorithm = Literal["HS256", "RS256"]
VerifyingKey = bytes | RSAPublicKey

DEV_SECRET_FILE: Final = "dev-jwt-secret"
MIN_SECRET_BYTES: Final = 32
MIN_RSA_BITS: Final = 2048
NO_KEY_IN_PRODUCTION: Final = (
    f"{PREFIX}JWT_SECRET: production needs a signing key (set it, or "
    f"{PREFIX}JWT_PRIVATE_KEY_FILE / _PUBLIC_KEY_FILE / _JWKS_FILE for RS256)"
)


@dataclass(frozen=True)
class VerificationKeys:
    """The keys a verifier accepts: one `default`, or several by key id (`kid`) from a JWKS."""

    algorithm: Algorithm
    default: VerifyingKey | None = field(default=None, repr=False)
    by_kid: dict[str, RSAPublicKey] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SigningKey:
    algorithm: Algorithm
    key: bytes | RSAPrivateKey = field(repr=False)
    kid: str | None = None


def signing_key(settings: Settings) -> SigningKey | None:
    """The configured signing key; None when only verification keys are configured."""
    if secret := _secret(settings):
        return SigningKey("HS256", secret)
    if settings.jwt_private_key_file is not None:
        private = _private_key(settings.jwt_private_key_file)
        return SigningKey("RS256", private, thumbprint(private.public_key()))
    if settings.jwt_public_key_file is not None or settings.jwt_jwks_file is not None:
        return None
    return SigningKey("HS256", development_secret(settings))


def verification_keys(settings: Settings) -> VerificationKeys:
    if secret := _secret(settings):
        return VerificationKeys("HS256", default=secret)
    if settings.jwt_jwks_file is not None:
        return VerificationKeys("RS256", by_kid=_jwks(settings.jwt_jwks_file))
    if settings.jwt_public_key_file is not None:
        return VerificationKeys("RS256", default=_public_key(settings.jwt_public_key_file))
    if settings.jwt_private_key_file is not None:
        return VerificationKeys(
            "RS256", default=_private_key(settings.jwt_private_key_file).public_key()
        )
    return VerificationKeys("HS256", default=development_secret(settings))


def _secret(settings: Settings) -> bytes | None:
    if settings.jwt_secret is None or not settings.jwt_secret.get_secret_value():
        return None
    key_files = (
        settings.jwt_public_key_file,
        settings.jwt_private_key_file,
        settings.jwt_jwks_file,
    )
    if any(path is not None for path in key_files):
        raise SettingsError(
            f"{PREFIX}JWT_SECRET: set a secret (HS256) or key files (RS256), not both"
        )
    secret = settings.jwt_secret.get_secret_value().encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"{PREFIX}JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes for HS256"
            f" (got {len(secret)}); `openssl rand -base64 48` makes one"
        )
    return secret


def development_secret(settings: Settings) -> bytes:
    """The development secret in `<data_dir>/dev-jwt-secret`, created (0600) on first use."""
    if settings.production:
        raise SettingsError(NO_KEY_IN_PRODUCTION)
    path = settings.data_dir / DEV_SECRET_FILE
    secret = devsecrets.development_secret(
        path,
        lambda: secrets.token_urlsafe(48),
        what="signing key",
        instead=f"{PREFIX}JWT_SECRET or a key file",
    ).encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(f"{PREFIX}JWT_SECRET: the development key {path} is damaged; delete it")
    return secret


def thumbprint(key: RSAPublicKey) -> str:
    """The RFC 7638 thumbprint of `key`, which the issuer sends as the token's `kid`."""
    jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{PREFIX}{variable}: cannot read {path} ({exc.strerror})") from None


def _checked(key: RSAPublicKey, variable: str) -> RSAPublicKey:
    if key.key_size < MIN_RSA_BITS:
        raise SettingsError(f"{PREFIX}{variable}: RSA keys need at least {MIN_RSA_BITS} bits")
    return key


def _public_key(path: Path) -> RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(_read(path, "JWT_PUBLIC_KEY_FILE"))
    except ValueError:
        key = None
    if not isinstance(key, RSAPublicKey):
        raise SettingsError(f"{PREFIX}JWT_PUBLIC_KEY_FILE: {path} is not a PEM RSA public key")
    return _checked(key, "JWT_PUBLIC_KEY_FILE")


def _private_key(path: Path) -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path, "JWT_PRIVATE_KEY_FILE"), None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, RSAPrivateKey):
        raise SettingsError(
            f"{PREFIX}JWT_PRIVATE_KEY_FILE: {path} is not an unencrypted PEM RSA private key"
        )
    _checked(key.public_key(), "JWT_PRIVATE_KEY_FILE")
    return key


def _jwks(path: Path) -> dict[str, RSAPublicKey]:
    """The RS256 signing keys of a JWKS file, by `kid` (a lone key may have none: `""`)."""
    try:
        entries = json.loads(_read(path, "JWT_JWKS_FILE"))["keys"]
        candidates = [
            entry
            for entry in entries
            if entry.get("kty") == "RSA"
            and entry.get("use", "sig") == "sig"
            and entry.get("alg", "RS256") == "RS256"
        ]
        keys = {str(entry.get("kid", "")): RSAAlgorithm.from_jwk(entry) for entry in candidates}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SettingsError(f"{PREFIX}JWT_JWKS_FILE: {path} is not a JWKS document") from None
    if not keys or (len(keys) > 1 and "" in keys) or len(keys) != len(candidates):
        raise SettingsError(
            f"{PREFIX}JWT_JWKS_FILE: {path} needs RS256 signing keys, each with its own kid"
        )
    return {
        kid: _checked(key if isinstance(key, RSAPublicKey) else key.public_key(), "JWT_JWKS_FILE")
        for kid, key in keys.items()
    }
