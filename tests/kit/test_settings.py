from __future__ import annotations

from pathlib import Path

import pytest

from outrigger.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OUTRIGGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_backends(tmp_path: Path) -> None:
    settings = load_settings()
    database = tmp_path / "xdg" / "outrigger" / "outrigger.db"
    assert settings.database_url == f"sqlite+aiosqlite:///{database}"
    assert settings.redis_url == "memory://"
    assert settings.amqp_url == "memory://"
    assert settings.env == "development"


def test_environment_picks_the_real_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTRIGGER_DATABASE_URL", "postgres://u:p@db:5432/app")
    monkeypatch.setenv("OUTRIGGER_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("OUTRIGGER_AMQP_URL", "amqp://guest:guest@mq:5672/")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/app"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.amqp_url.startswith("amqp://")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OUTRIGGER_DATABASE_URL", "nonsense", "postgresql+psycopg://"),
        ("OUTRIGGER_REDIS_URL", "http://x", "redis://"),
        ("OUTRIGGER_AMQP_URL", "kafka://x", "amqp://"),
        ("OUTRIGGER_DATABASE_POOL_SIZE", "lots", "integer"),
        ("OUTRIGGER_ENV", "staging", "development"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert expected in message
    assert "\n" not in message


def test_the_data_dir_is_the_same_wherever_a_command_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    here = load_settings().data_dir
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_settings().data_dir == here == tmp_path / "xdg" / "outrigger"


def test_without_xdg_data_home_the_data_dir_is_under_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME")
    assert load_settings().data_dir == tmp_path / "home" / ".local" / "share" / "outrigger"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")
    assert load_settings().data_dir == tmp_path / "home" / ".local" / "share" / "outrigger"


def test_outrigger_data_dir_overrides_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OUTRIGGER_DATA_DIR", "~/data")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "home" / "data"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'home' / 'data'}/outrigger.db"


def test_a_dotenv_file_is_not_read(tmp_path: Path) -> None:
    """`.env` is docker compose's file: its keys and URLs are not the embedded mode's."""
    (tmp_path / ".env").write_text(
        "OUTRIGGER_REDIS_URL=redis://from-dotenv:6379/1\nOUTRIGGER_JWT_SECRET=" + "c" * 64 + "\n"
    )
    settings = load_settings()
    assert settings.redis_url == "memory://"
    assert settings.jwt_secret is None


def test_secrets_directory_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "outrigger_jwt_secret").write_text("from-a-secret-file")
    monkeypatch.setenv("OUTRIGGER_SECRETS_DIR", str(secrets))
    settings = load_settings()
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == "from-a-secret-file"


def test_a_service_extends_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    class CacheSettings(Settings):
        max_value_bytes: int = 1024

    monkeypatch.setenv("OUTRIGGER_MAX_VALUE_BYTES", "2048")
    assert load_settings(CacheSettings).max_value_bytes == 2048
