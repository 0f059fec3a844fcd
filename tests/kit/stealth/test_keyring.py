"""Master keys from OUTRIGGER_STEALTH_KEYS, the development keyring and the production refusal."""

from __future__ import annotations

import base64
import logging
import stat
from typing import TYPE_CHECKING, Any

import pytest

from outrigger.settings import Settings, SettingsError
from outrigger.stealth import NO_KEYS_IN_PRODUCTION, Keyring, MasterKey, Stealth, UnknownKeyId

if TYPE_CHECKING:
    from pathlib import Path


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    overrides.setdefault("data_dir", tmp_path / "data")
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def test_the_first_key_encrypts_and_all_decrypt(k1: MasterKey, k2: MasterKey) -> None:
    keyring = Keyring.parse(f" {k2.encoded()} , {k1.encoded()},")
    assert keyring.current_kid == "k2"
    assert keyring.kids == ("k2", "k1")
    with pytest.raises(UnknownKeyId, match=r"no stealth key 'k3' .*\(it holds k2, k1\)"):
        keyring.cipher("k3")


def test_url_safe_and_unpadded_base64_are_accepted() -> None:
    secret = bytes(range(250, 256)) * 5 + b"\xfb\xff"
    encoded = base64.urlsafe_b64encode(secret).decode().rstrip("=")
    assert "-" in encoded or "_" in encoded
    keyring = Keyring.parse(f"web:{encoded}")
    assert keyring.kids == ("web",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("just-a-key", "entry 1: expected kid:base64-32-bytes"),
        ("a:%%%%", "key 'a' is not base64"),
        (f"a:{base64.b64encode(b'x' * 16).decode()}", "key 'a' must be 32 bytes, got 16"),
        (
            f"a:{base64.b64encode(b'x' * 32).decode()},a:{base64.b64encode(b'y' * 32).decode()}",
            "key id 'a' appears twice",
        ),
        (
            f"a b:{base64.b64encode(b'x' * 32).decode()}",
            "key id 'a b' must be 1-32 of A-Z a-z 0-9 _ -",
        ),
    ],
)
def test_bad_keys_are_one_line_that_never_shows_the_key(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Keyring.from_settings(make_settings(tmp_path, stealth_keys=value))
    assert str(caught.value) == f"OUTRIGGER_STEALTH_KEYS: {message}"
    secret = value.partition(":")[2]
    assert len(secret) < 8 or secret not in str(caught.value)


def test_master_keys_do_not_show_their_secret(k1: MasterKey) -> None:
    assert base64.b64encode(k1.secret).decode() not in repr(k1)


async def test_development_keyring_is_created_private_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="outrigger.devsecrets")
    settings = make_settings(tmp_path, data_dir=tmp_path / "new" / "dir")
    stored = await Stealth.from_settings(settings).obfuscate({"ssn": "123"}, ["ssn"])
    key_file = tmp_path / "new" / "dir" / "dev-stealth-keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    content = key_file.read_text()
    again = Stealth.from_settings(make_settings(tmp_path, data_dir=tmp_path / "new" / "dir"))
    assert await again.deobfuscate(stored, ["ssn"]) == {"ssn": "123"}
    assert key_file.read_text() == content
    assert any(str(key_file) in record.getMessage() for record in caplog.records)


async def test_configured_keys_win_over_the_development_keyring(
    tmp_path: Path, k1: MasterKey
) -> None:
    stealth = Stealth.from_settings(make_settings(tmp_path, stealth_keys=k1.encoded()))
    stored = await stealth.obfuscate({"ssn": "123"}, ["ssn"])
    assert stored["ssn"].startswith("$stealth:v1:k1:")
    assert not (tmp_path / "data").exists()


def test_production_refuses_to_start_without_keys(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Keyring.from_settings(make_settings(tmp_path, env="production"))
    assert str(caught.value) == NO_KEYS_IN_PRODUCTION
    assert str(caught.value).startswith("OUTRIGGER_STEALTH_KEYS: production needs")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "data").exists()


def test_an_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory should be")
    with pytest.raises(SettingsError) as caught:
        Keyring.from_settings(make_settings(tmp_path, data_dir=tmp_path / "blocked" / "data"))
    expected = "OUTRIGGER_DATA_DIR: cannot create the development encryption keys"
    assert str(caught.value).startswith(expected)


def test_a_damaged_development_keyring_says_where_it_is(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dev-stealth-keys").write_text("oops")
    with pytest.raises(SettingsError, match=r"development keys .*dev-stealth-keys: entry 1"):
        Keyring.from_settings(make_settings(tmp_path))
