"""The audit service's settings: the checkpoint signing key, configured or made for development."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

import pytest

from outrigger.notes import open_checkpoint
from outrigger.settings import SettingsError
from services.audit.settings import AuditSettings

if TYPE_CHECKING:
    from pathlib import Path


def test_a_configured_key_signs_under_the_origin(tmp_path: Path) -> None:
    seed = os.urandom(32)
    settings = AuditSettings(
        data_dir=tmp_path, audit_signing_key=base64.b64encode(seed).decode(), audit_origin="a.b"
    )
    signer = settings.signer()
    assert signer.name == "a.b"
    note = signer.sign("a.b/t\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n")
    assert open_checkpoint(note, signer.verifier_key)[:2] == ("a.b/t", 1)
    assert not list(tmp_path.iterdir())  # no development key made


def test_without_a_key_development_makes_one_and_keeps_it(tmp_path: Path) -> None:
    first = AuditSettings(data_dir=tmp_path).signer()
    again = AuditSettings(data_dir=tmp_path).signer()
    assert first.verifier_key == again.verifier_key
    assert (tmp_path / "dev-audit-signing-key").stat().st_mode & 0o077 == 0


def test_production_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OUTRIGGER_AUDIT_SIGNING_KEY: production"):
        AuditSettings(data_dir=tmp_path, env="production").signer()


@pytest.mark.parametrize(
    ("key", "says"),
    [("not base64!", "not base64"), (base64.b64encode(b"short").decode(), "32 bytes, not 5")],
)
def test_a_bad_key_is_one_line_naming_the_setting(tmp_path: Path, key: str, says: str) -> None:
    with pytest.raises(SettingsError, match=f"OUTRIGGER_AUDIT_SIGNING_KEY: .*{says}"):
        AuditSettings(data_dir=tmp_path, audit_signing_key=key).signer()
