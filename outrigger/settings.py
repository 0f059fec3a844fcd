"""Settings from the environment (`OUTRIGGER_*`) and a secrets directory (`OUTRIGGER_SECRETS_DIR`).

No `.env` file is read: that file is docker compose's (see `.env.example`), and the settings of a
command must not depend on the folder it starts in.

The URL scheme of each backend picks its adapter: `memory://` or `sqlite+aiosqlite://` for the
embedded ones that need no server, `redis://`, `amqp://`, `postgresql+psycopg://` for the real ones.
A bad value is a `SettingsError` with one line naming the variable and the form it expects; the CLI
prints that line and exits 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from outrigger import datadir
from outrigger.errors import SettingsError as SettingsError

PREFIX = "OUTRIGGER_"
DEFAULT_SECRETS_DIR = Path("/run/secrets")

DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+psycopg")
REDIS_SCHEMES = ("memory", "redis", "rediss", "unix")
AMQP_SCHEMES = ("memory", "amqp", "amqps")

EXPECTED_FORM = {
    "database_url": "postgresql+psycopg://user:password@host:5432/db or sqlite+aiosqlite:///path",
    "redis_url": "redis://host:6379/0, rediss://…, unix:///path or memory://",
    "amqp_url": "amqp://user:password@host:5672/vhost, amqps://… or memory://",
}


def _check_scheme(name: str, url: str, schemes: tuple[str, ...]) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in schemes:
        raise ValueError(f"expected {EXPECTED_FORM[name]}")
    return url


class Settings(BaseSettings):
    """What every service reads. A service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", case_sensitive=False)

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(
        default_factory=datadir.default,
        description="the embedded databases and development secrets (see outrigger.datadir)",
    )

    database_url: str = ""
    database_pool_size: int = Field(10, ge=1, le=1000)
    database_max_overflow: int = Field(10, ge=0, le=1000)
    database_pool_timeout_seconds: float = Field(5.0, gt=0)
    database_statement_timeout_seconds: float = Field(
        30.0, ge=0, description="PostgreSQL statement_timeout of every connection (0: none)"
    )
    database_lock_timeout_seconds: float = Field(
        5.0, ge=0, description="PostgreSQL lock_timeout of every connection (0: none)"
    )
    database_idle_in_transaction_timeout_seconds: float = Field(
        60.0, ge=0, description="PostgreSQL idle_in_transaction_session_timeout (0: none)"
    )
    database_connect_timeout_seconds: float = Field(
        5.0, ge=0, description="how long opening a PostgreSQL connection may take (0: no limit)"
    )
    redis_url: str = "memory://"
    amqp_url: str = "memory://"
    amqp_prefetch: int = Field(100, ge=1, le=65535)

    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: Literal["all", "errors", "off"] = Field(
        "all", description="one JSON line per request: all, only 4xx/5xx answers, or none"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="comma-separated origins whose pages may call the API (browsers' CORS); "
        "none by default, '*' for any",
    )
    http_max_header_bytes: int = Field(
        16 * 1024, ge=1024, le=1024 * 1024, description="request line and headers, together"
    )
    http_header_timeout_seconds: float = Field(
        10.0, gt=0, description="to receive a request's line and headers"
    )
    http_body_timeout_seconds: float = Field(30.0, gt=0, description="to receive a whole body")
    http_max_connections: int = Field(
        1000, ge=1, description="open connections per process; beyond them requests get 503"
    )
    shutdown_grace_seconds: float = Field(30.0, ge=0)

    jwt_secret: SecretStr | None = None
    jwt_public_key_file: Path | None = None
    jwt_private_key_file: Path | None = None
    jwt_jwks_file: Path | None = None
    jwt_issuer: str = "outrigger"
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(
        5, ge=0, le=300, description="clock skew allowed on a token's exp, nbf and iat"
    )

    stealth_keys: SecretStr | None = Field(
        None, description="comma-separated key-id:base64-32-bytes; the first one encrypts"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        for alias in ("postgresql://", "postgres://"):
            if value.startswith(alias):
                value = "postgresql+psycopg://" + value.removeprefix(alias)
        return _check_scheme("database_url", value, DATABASE_SCHEMES)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return _check_scheme("redis_url", value, REDIS_SCHEMES)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        return _check_scheme("amqp_url", value, AMQP_SCHEMES)

    @model_validator(mode="after")
    def _embedded_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'outrigger.db'}"
        return self

    @property
    def production(self) -> bool:
        return self.env == "production"


S = TypeVar("S", bound=Settings)


@overload
def load_settings() -> Settings: ...
@overload
def load_settings(cls: type[S], **overrides: Any) -> S: ...
def load_settings(cls: type[Settings] = Settings, **overrides: Any) -> Settings:
    """Reads settings, raising `SettingsError` with one line naming the (first) bad variable."""
    secrets = Path(os.environ.get(PREFIX + "SECRETS_DIR", DEFAULT_SECRETS_DIR))
    try:
        if secrets.is_dir():
            return cls(_secrets_dir=secrets, **overrides)
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """`OUTRIGGER_DATABASE_URL: expected postgresql+psycopg://… (got 'nonsense')`."""
    error = exc.errors(include_url=False)[0]
    variable, *inside = [str(part) for part in error["loc"]] or ["settings"]
    field = ".".join([variable.upper(), *inside])
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    secret = any(word in variable for word in ("secret", "key", "password"))
    shown = "" if secret or isinstance(got, dict) or got is None else f" (got {str(got)[:60]!r})"
    return f"{PREFIX}{field}: {message}{shown}"
