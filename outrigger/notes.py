"""Signed notes and transparency-log checkpoints, as C2SP specifies them (`signed-note`,
`tlog-checkpoint`), with Ed25519 keys: what the audit service issues and what anyone verifies.

    signer = NoteSigner.generate("audit.example.com")       # or NoteSigner.from_seed(name, seed)
    note = signer.sign(checkpoint_body("audit.example.com/default", 42, root))
    origin, size, root = open_checkpoint(note, signer.verifier_key)

A verifier key is the text `<name>+<key hash, 8 hex>+<base64(0x01 || public key)>`, the form Go's
`golang.org/x/mod/sumdb/note` and the C2SP tools read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space start every signature line


class NoteError(ValueError):
    """A note, a checkpoint or a key that is malformed, or a signature that does not verify."""


def _key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    name: str
    public: bytes

    @classmethod
    def parse(cls, key: str) -> NoteVerifier:
        """A verifier from its text form `<name>+<hash>+<base64 key>`."""
        try:
            name, hash_hex, encoded = key.strip().split("+", 2)  # base64 may hold a +
            raw = base64.b64decode(encoded, validate=True)
            wanted = bytes.fromhex(hash_hex)
        except (ValueError, binascii.Error) as exc:
            raise NoteError("a verifier key reads <name>+<8 hex digits>+<base64 key>") from exc
        _check_name(name)
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
        public = raw[1:]
        if _key_hash(name, public) != wanted:
            raise NoteError(f"verifier key {name}: its hash does not match its key")
        return cls(name, public)

    @property
    def key_hash(self) -> bytes:
        return _key_hash(self.name, self.public)

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([ED25519]) + self.public).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    def open(self, note: str) -> str:
        """The body of `note` if this key signed it; NoteError otherwise."""
        body, sep, signatures = note.partition("\n\n")
        if not sep or not body or not note.endswith("\n"):
            raise NoteError("a signed note is its text, a blank line, then signature lines")
        body += "\n"
        key = Ed25519PublicKey.from_public_bytes(self.public)
        for line in signatures.splitlines():
            if not line.startswith(SIGNATURE_PREFIX):
                raise NoteError(f"signature line {line[:40]!r} does not start with an em dash")
            name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except binascii.Error as exc:
                raise NoteError(f"signature of {name!r} is not base64") from exc
            if name != self.name or raw[:4] != self.key_hash:
                continue
            try:
                key.verify(raw[4:], body.encode())
            except InvalidSignature as exc:
                raise NoteError(f"the signature of {name} does not verify") from exc
            return body
        raise NoteError(f"the note carries no signature of {self.name}")


class NoteSigner:
    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = key
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = NoteVerifier(name, public)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> NoteSigner:
        """The signer of a 32-byte Ed25519 private key (seed)."""
        if len(seed) != 32:
            raise NoteError(f"an Ed25519 private key is 32 bytes, not {len(seed)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def verifier_key(self) -> str:
        return str(self.verifier)

    def sign(self, body: str) -> str:
        """The signed note of `body` (text ending in a newline, without blank lines)."""
        if not body.endswith("\n") or "\n\n" in body:
            raise NoteError("a note's text ends with a newline and has no blank line")
        signature = self._key.sign(body.encode())
        encoded = base64.b64encode(self.verifier.key_hash + signature).decode()
        return f"{body}\n{SIGNATURE_PREFIX}{self.name} {encoded}\n"


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The text of a tlog-checkpoint: origin, tree size, base64 root hash, one per line."""
    if not origin or "\n" in origin:
        raise NoteError("a checkpoint's origin is one non-empty line")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def open_checkpoint(note: str, verifier: NoteVerifier | str) -> tuple[str, int, bytes]:
    """`(origin, size, root)` of a checkpoint signed by `verifier`; NoteError otherwise."""
    if isinstance(verifier, str):
        verifier = NoteVerifier.parse(verifier)
    lines = verifier.open(note).split("\n")
    if len(lines) < 4:
        raise NoteError("a checkpoint reads origin, tree size and root hash, a line each")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError(f"checkpoint tree size {size_text[:30]!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise NoteError("checkpoint root hash is not base64") from exc
    if len(root) != 32:
        raise NoteError(f"checkpoint root hash is {len(root)} bytes, not 32")
    return origin, int(size_text), root
