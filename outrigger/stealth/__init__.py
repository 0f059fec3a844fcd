"""Field-level encryption: AES-256-GCM over JSON fields chosen by path, with key ids, master-key
rotation and per-subject keys for crypto-shredding.

    stealth = Stealth.from_settings(settings, SqlSubjectKeyStore(engine, table))
    stored = await stealth.obfuscate(record, ["card.number", "items.*.ssn"], subject="u-42")
    shown = await stealth.deobfuscate(stored, ["card.number", "items.*.ssn"], subject="u-42")
    await stealth.forget("u-42")   # its fields now deobfuscate to ERASED

Errors: `UnknownKeyId` and `TamperedCiphertext` (both `StealthError`, a 500: the stored data or
the keyring is at fault) and `SubjectErased` (a 410 `Gone`, from `deobfuscate(..., strict=True)`).
"""

from outrigger.stealth.cipher import (
    ERASED,
    MASKED,
    UNREADABLE,
    Stealth,
    is_erased,
    is_protected,
    is_unreadable,
    mask,
)
from outrigger.stealth.errors import StealthError, SubjectErased, TamperedCiphertext, UnknownKeyId
from outrigger.stealth.keyring import NO_KEYS_IN_PRODUCTION, Keyring, MasterKey
from outrigger.stealth.memory import InMemorySubjectKeyStore
from outrigger.stealth.sql import SqlSubjectKeyStore, subject_keys_table
from outrigger.stealth.store import BatchSubjectKeys, SubjectKeyStore, WrappedKey

__all__ = [
    "ERASED",
    "MASKED",
    "NO_KEYS_IN_PRODUCTION",
    "UNREADABLE",
    "BatchSubjectKeys",
    "InMemorySubjectKeyStore",
    "Keyring",
    "MasterKey",
    "SqlSubjectKeyStore",
    "Stealth",
    "StealthError",
    "SubjectErased",
    "SubjectKeyStore",
    "TamperedCiphertext",
    "UnknownKeyId",
    "WrappedKey",
    "is_erased",
    "is_protected",
    "is_unreadable",
    "mask",
    "subject_keys_table",
]
