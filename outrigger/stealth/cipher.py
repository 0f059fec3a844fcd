"""`Stealth`: encrypts and decrypts JSON fields by path, under master or per-subject keys.

A protected field holds `"$stealth:v1:<kid>:<base64url(nonce + ciphertext)>"`: the format
version, the id of the key that encrypted it, and the AES-256-GCM output, authenticated together
with the field's path (see `outrigger.stealth.paths`). `<kid>` is a master key id, or `@` and a
subject key id. When that subject key was deleted, deobfuscation puts `ERASED` in the field,
or raises `SubjectErased` with `strict=True`. Both directions return a new document that shares
its unchanged parts with the one given, which is never modified.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from outrigger.errors import InvalidInput
from outrigger.stealth import paths as field_paths
from outrigger.stealth.errors import StealthError, SubjectErased, TamperedCiphertext
from outrigger.stealth.keyring import KEY_BYTES, NONCE_BYTES, Keyring
from outrigger.stealth.store import WrappedKey

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from outrigger.settings import Settings
    from outrigger.stealth.store import SubjectKeyStore

MARK: Final = "$stealth:"
VERSION: Final = "v1"
SUBJECT_KEY: Final = "@"
ERASED: Final[Mapping[str, Any]] = MappingProxyType(
    {"$erased": True, "reason": "subject key deleted"}
)
UNREADABLE: Final[Mapping[str, Any]] = MappingProxyType(
    {"$unreadable": True, "reason": "cannot be decrypted (damaged, or its key is missing)"}
)

MASKED: Final[Mapping[str, Any]] = MappingProxyType(
    {"$masked": True, "reason": "revealing this field needs a reveal scope"}
)


def mask(document: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """`document` with every protected value at `paths` replaced by `MASKED`, no key needed:
    what a caller may see of a record whose sensitive fields it may not reveal."""
    for path in paths:
        document = field_paths.rewrite(
            document, field_paths.parse(path), lambda v, _: dict(MASKED) if is_protected(v) else v
        )
    return document


def is_protected(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(MARK)


def is_erased(value: Any) -> bool:
    return isinstance(value, Mapping) and value == ERASED


def is_unreadable(value: Any) -> bool:
    return isinstance(value, Mapping) and value == UNREADABLE


class Stealth:
    """Field-level encryption with a `Keyring`, and per-subject keys when given a store."""

    def __init__(self, keyring: Keyring, subject_keys: SubjectKeyStore | None = None) -> None:
        self.keyring = keyring
        self.subject_keys = subject_keys

    @classmethod
    def from_settings(
        cls, settings: Settings, subject_keys: SubjectKeyStore | None = None
    ) -> Stealth:
        return cls(Keyring.from_settings(settings), subject_keys)

    async def obfuscate(
        self, document: dict[str, Any], paths: Sequence[str], *, subject: str | None = None
    ) -> dict[str, Any]:
        """`document` with the values at `paths` encrypted (already encrypted ones kept).

        With `subject`, the subject's data key is used (created on first use), so `forget`
        erases these fields for good.
        """
        parsed = [field_paths.parse(path) for path in paths]
        if not any(_found(document, segments, _plain) for segments in parsed):
            return document
        kid, cipher = self.keyring.current_kid, self.keyring.cipher(self.keyring.current_kid)
        if subject is not None:
            key = await self._subject_key(subject)
            kid, cipher = SUBJECT_KEY + key.key_id, AESGCM(self._unwrap(key))

        def encrypt(value: Any, path: str) -> Any:
            if not _plain(value):
                return value
            try:
                plaintext = orjson.dumps(value)
            except orjson.JSONEncodeError:
                raise InvalidInput(f"{path}: a {type(value).__name__} is not JSON") from None
            nonce = os.urandom(NONCE_BYTES)
            sealed = nonce + cipher.encrypt(nonce, plaintext, _bound(kid, path))
            return f"{MARK}{VERSION}:{kid}:{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"

        for segments in parsed:
            document = field_paths.rewrite(document, segments, encrypt)
        return document

    async def deobfuscate(
        self,
        document: dict[str, Any],
        paths: Sequence[str],
        *,
        subject: str | None = None,
        strict: bool = False,
        on_unreadable: Callable[[StealthError], None] | None = None,
    ) -> dict[str, Any]:
        """`document` with the protected values at `paths` decrypted.

        Plain values are left as they are. A field whose subject key was deleted becomes
        `ERASED`, or raises `SubjectErased` when `strict`. A field altered or moved from another
        path raises `TamperedCiphertext`; one under a key missing from the keyring `UnknownKeyId`.
        Given `on_unreadable`, such a field becomes `UNREADABLE` instead and the error goes to
        it, so one damaged field does not make the rest of a log unreadable.
        """
        parsed = [field_paths.parse(path) for path in reversed(paths)]
        subject_key: bytes | None = None
        key_id = None
        key_error: StealthError | None = None
        if any(_found(document, segments, _by_subject_key) for segments in parsed):
            if subject is None:
                raise StealthError("these fields are encrypted with a subject's key: pass subject=")
            stored = await self._store().get(subject)
            if stored is not None:
                key_id = stored.key_id
                try:
                    subject_key = self._unwrap(stored)
                except StealthError as exc:
                    if on_unreadable is None:
                        raise
                    key_error = exc

        def decrypt(value: Any, path: str) -> Any:
            if not is_protected(value):
                return value
            try:
                if key_error is not None and _by_subject_key(value):
                    raise key_error
                return decrypted(value, path)
            except StealthError as exc:
                if on_unreadable is None:
                    raise
                on_unreadable(exc)
                return dict(UNREADABLE)

        def decrypted(value: str, path: str) -> Any:
            kid, sealed = _parse(value, path)
            if kid.startswith(SUBJECT_KEY):
                if subject_key is None or kid[1:] != key_id:
                    if strict:
                        raise SubjectErased(
                            f"{path}: the key of subject {subject!r} was deleted; the data is gone"
                        )
                    return dict(ERASED)
                cipher = AESGCM(subject_key)
            else:
                cipher = self.keyring.cipher(kid)
            try:
                plaintext = cipher.decrypt(
                    sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _bound(kid, path)
                )
            except InvalidTag:
                raise TamperedCiphertext(
                    f"{path}: ciphertext failed authentication (altered, or moved from elsewhere)"
                ) from None
            return orjson.loads(plaintext)

        for segments in parsed:
            document = field_paths.rewrite(document, segments, decrypt)
        return document

    async def mask(
        self, document: dict[str, Any], paths: Sequence[str], *, subject: str | None = None
    ) -> dict[str, Any]:
        """`document` as a caller who may not reveal it sees it: every protected value at
        `paths` replaced by `MASKED`, or by `ERASED` where it was encrypted under a subject key
        that was deleted (`forget`). Nothing is decrypted; the subject's key is looked up once,
        only if a field is under it (without `subject`, such a field is `MASKED`)."""
        parsed = [field_paths.parse(path) for path in paths]
        looked_up, key_id = False, None
        if subject is not None and any(_found(document, s, _by_subject_key) for s in parsed):
            stored = await self._store().get(subject)
            looked_up, key_id = True, None if stored is None else stored.key_id

        def hide(value: Any, _path: str) -> Any:
            if not is_protected(value):
                return value
            if looked_up and _by_subject_key(value) and _subject_key_id(value) != key_id:
                return dict(ERASED)
            return dict(MASKED)

        for segments in parsed:
            document = field_paths.rewrite(document, segments, hide)
        return document

    async def forget(self, subject: str) -> bool:
        """Deletes the subject's key: every field encrypted under it is unreadable for good."""
        return await self._store().delete(subject)

    async def rewrap_subject_keys(self, *, batch: int = 100) -> int:
        """Re-wraps every subject key under the current master key; returns how many changed.

        Run it after rotating master keys, before removing an old key from the keyring.
        """
        store, current, changed = self._store(), self.keyring.current_kid, 0
        while stale := await store.not_wrapped_by(current, batch):
            for key in stale:
                fresh = self._wrap(key.subject, key.key_id, self._unwrap(key))
                changed += await store.replace(key, fresh)
        return changed

    def _store(self) -> SubjectKeyStore:
        if self.subject_keys is None:
            raise RuntimeError("per-subject keys need a SubjectKeyStore: pass subject_keys=")
        return self.subject_keys

    async def _subject_key(self, subject: str) -> WrappedKey:
        """The subject's key, made on first use (`get` first: most subjects already have one)."""
        store = self._store()
        key = await store.get(subject)
        if key is not None:
            return key
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        return await store.get_or_create(self._wrap(subject, uuid.uuid4().hex, data_key))

    def _wrap(self, subject: str, key_id: str, data_key: bytes) -> WrappedKey:
        kid = self.keyring.current_kid
        nonce = os.urandom(NONCE_BYTES)
        wrapped = self.keyring.cipher(kid).encrypt(nonce, data_key, _wrapping(subject, key_id))
        return WrappedKey(subject, key_id, kid, nonce + wrapped)

    def _unwrap(self, key: WrappedKey) -> bytes:
        cipher = self.keyring.cipher(key.master_kid)
        nonce, wrapped = key.wrapped[:NONCE_BYTES], key.wrapped[NONCE_BYTES:]
        try:
            return cipher.decrypt(nonce, wrapped, _wrapping(key.subject, key.key_id))
        except InvalidTag:
            raise TamperedCiphertext(
                f"the stored key of subject {key.subject!r} failed authentication"
            ) from None


def _bound(kid: str, path: str) -> bytes:
    return f"{MARK}{VERSION}:{kid}:{path}".encode()


def _wrapping(subject: str, key_id: str) -> bytes:
    return f"{MARK}{VERSION}:subject-key:{key_id}:{subject}".encode()


def _plain(value: Any) -> bool:
    return not is_protected(value) and not is_erased(value)


def _by_subject_key(value: Any) -> bool:
    return is_protected(value) and value.startswith(f"{MARK}{VERSION}:{SUBJECT_KEY}")


def _subject_key_id(value: str) -> str:
    """The subject key id of a value encrypted under a subject's key."""
    return value.removeprefix(f"{MARK}{VERSION}:{SUBJECT_KEY}").partition(":")[0]


def _found(
    document: dict[str, Any], segments: Sequence[str], wanted: Callable[[Any], bool]
) -> bool:
    return any(wanted(value) for value in field_paths.values(document, segments))


def _parse(value: str, path: str) -> tuple[str, bytes]:
    version, _, rest = value.removeprefix(MARK).partition(":")
    if version != VERSION:
        raise StealthError(f"{path}: unsupported stealth format {version[:8]!r} (this reads v1)")
    kid, _, encoded = rest.partition(":")
    try:
        sealed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        sealed = b""
    if not kid or len(sealed) < NONCE_BYTES + 16:
        raise TamperedCiphertext(f"{path}: ciphertext is damaged")
    return kid, sealed
