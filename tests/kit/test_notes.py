"""Signed notes and checkpoints (`outrigger.notes`): keys read back, signatures that hold."""

from __future__ import annotations

import pytest

from outrigger.notes import (
    NoteError,
    NoteSigner,
    NoteVerifier,
    checkpoint_body,
    open_checkpoint,
)

ROOT = bytes(range(32))


def test_every_verifier_key_reads_back_also_with_a_plus_in_its_base64() -> None:
    keys = [NoteSigner.generate("audit.example").verifier_key for _ in range(64)]
    assert any("+" in key.split("+", 2)[2] for key in keys)  # the case that once failed
    for key in keys:
        assert str(NoteVerifier.parse(key)) == key


def test_a_checkpoint_opens_with_its_key_only() -> None:
    signer = NoteSigner.from_seed("audit.example", bytes(32))
    note = signer.sign(checkpoint_body("audit.example/acme", 42, ROOT))
    assert open_checkpoint(note, signer.verifier_key) == ("audit.example/acme", 42, ROOT)
    other = NoteSigner.generate("audit.example")
    with pytest.raises(NoteError, match="carries no signature of audit"):
        open_checkpoint(note, other.verifier_key)
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), signer.verifier_key)


def test_a_key_whose_hash_does_not_match_is_refused() -> None:
    name, _, encoded = NoteSigner.generate("k").verifier_key.split("+", 2)
    with pytest.raises(NoteError, match="does not match"):
        NoteVerifier.parse(f"{name}+00000000+{encoded}")
