"""Master keys: AES-256-GCM keys by key id, from `OUTRIGGER_STEALTH_KEYS`.

The setting lists `kid:base64-32-bytes` entries separated by commas; the first key encrypts, every
key decrypts, so rotation is: put a new key first, keep the old ones until nothing needs them.
With no keys configured, outside production, a development keyring is kept (0600) in
`<data_dir>/dev-stealth-keys`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from outrigger import devsecrets
from outrigger.settings import PREFIX, SettingsError
from outrigger.stealth.errors import UnknownKeyId

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from outrigger.settings import Settings

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
KID: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
DEV_KEYS_FILE: Final = "dev-stealth-keys"
NO_KEYS_IN_PRODUCTION: Final = (
    f"{PREFIX}STEALTH_KEYS: production needs encryption keys"
    " (kid:base64-32-bytes,…; the first encrypts)"
)

_URLSAFE: Final = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class MasterKey:
    kid: str
    secret: bytes = field(repr=False)

    @classmethod
    def generate(cls, kid: str) -> MasterKey:
        return cls(kid, AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    def encoded(self) -> str:
        """The `kid:base64` form that `OUTRIGGER_STEALTH_KEYS` takes."""
        return f"{self.kid}:{base64.b64encode(self.secret).decode()}"


class Keyring:
    """Master keys by id; `current` (the first) encrypts, all of them decrypt."""

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._ciphers: dict[str, AESGCM] = {}
        for key in keys:
            if not KID.fullmatch(key.kid):
                raise ValueError(f"key id {key.kid[:40]!r} must be 1-32 of A-Z a-z 0-9 _ -")
            if key.kid in self._ciphers:
                raise ValueError(f"key id {key.kid!r} appears twice")
            if len(key.secret) != KEY_BYTES:
                raise ValueError(
                    f"key {key.kid!r} must be {KEY_BYTES} bytes, got {len(key.secret)}"
                )
            self._ciphers[key.kid] = AESGCM(key.secret)
        self.current_kid = keys[0].kid

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def cipher(self, kid: str) -> AESGCM:
        try:
            return self._ciphers[kid]
        except KeyError:
            known = ", ".join(self.kids)
            raise UnknownKeyId(
                f"no stealth key {kid[:40]!r} in {PREFIX}STEALTH_KEYS (it holds {known})"
            ) from None

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Reads `kid:base64,kid:base64`; `ValueError` says which entry is wrong, never its key."""
        keys = []
        for number, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), 1):
            kid, sep, encoded = entry.partition(":")
            if not sep:
                raise ValueError(f"entry {number}: expected kid:base64-32-bytes")
            keys.append(MasterKey(kid.strip(), _decode(encoded.strip(), kid.strip())))
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        configured = settings.stealth_keys.get_secret_value() if settings.stealth_keys else ""
        if configured.strip():
            try:
                return cls.parse(configured)
            except ValueError as exc:
                raise SettingsError(f"{PREFIX}STEALTH_KEYS: {exc}") from None
        if settings.production:
            raise SettingsError(NO_KEYS_IN_PRODUCTION)
        return cls._development(settings.data_dir / DEV_KEYS_FILE)

    @classmethod
    def _development(cls, path: Path) -> Keyring:
        text = devsecrets.development_secret(
            path,
            lambda: MasterKey.generate(f"dev-{secrets.token_hex(3)}").encoded(),
            what="encryption keys",
            instead=f"{PREFIX}STEALTH_KEYS",
        )
        try:
            return cls.parse(text)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}STEALTH_KEYS: development keys {path}: {exc}") from None


def _decode(encoded: str, kid: str) -> bytes:
    try:
        secret = base64.b64decode(
            encoded.translate(_URLSAFE) + "=" * (-len(encoded) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise ValueError(f"key {kid[:40]!r} is not base64") from None
    return secret
