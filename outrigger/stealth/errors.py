"""Why a protected field could not be read."""

from __future__ import annotations

from outrigger.errors import Gone, OutriggerError


class StealthError(OutriggerError):
    """A protected field cannot be decrypted: the server's data or keys are at fault (500)."""

    slug = "stealth-undecryptable"
    title = "Protected field cannot be decrypted"


class UnknownKeyId(StealthError):
    """The ciphertext names a master key that is not in the keyring (a retired or missing key)."""

    slug = "stealth-unknown-key"
    title = "Unknown encryption key"


class TamperedCiphertext(StealthError):
    """The ciphertext failed authentication: altered, truncated, or moved from another field."""

    slug = "stealth-tampered"
    title = "Ciphertext failed authentication"


class SubjectErased(Gone):
    """The subject's key was deleted (crypto-shredding): the field is gone for good (410)."""

    slug = "subject-erased"
    title = "Subject erased"
