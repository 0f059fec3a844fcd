"""JWT bearer auth: keys from settings, verification failures, scopes, channels, FastAPI routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import stat
import time
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from jwt.algorithms import RSAAlgorithm

from outrigger.auth import (
    ALL_SCOPES,
    NO_KEY_IN_PRODUCTION,
    Principal,
    Scopes,
    TokenIssuer,
    TokenVerifier,
    auth_from_settings,
    channel_allowed,
    require_scope,
    thumbprint,
)
from outrigger.errors import OutriggerError, Unauthorized
from outrigger.settings import Settings, SettingsError

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OUTRIGGER_* variable or .env file of the machine leaks into these settings."""
    import os

    for name in list(os.environ):
        if name.startswith("OUTRIGGER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    overrides.setdefault("data_dir", tmp_path / "data")
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": "outrigger", "sub": "alice", "exp": now + 60, "iat": now}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def hs_verifier(tmp_path: Path, **overrides: Any) -> TokenVerifier:
    return TokenVerifier.from_settings(make_settings(tmp_path, jwt_secret=SECRET, **overrides))


def rejection(verifier: TokenVerifier, token: str | None) -> str:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    return caught.value.detail


# --- verification ---------------------------------------------------------------------------


def test_hs256_token_round_trips_subject_scopes_channels(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, jwt_secret=SECRET)
    token = TokenIssuer.from_settings(settings).mint(
        "alice", ["events:read", "cache:read"], 60, channels=["orders.*"], extra={"tenant": "t1"}
    )
    principal = TokenVerifier.from_settings(settings).verify(token)
    assert principal.subject == "alice"
    assert principal.scopes == frozenset({"events:read", "cache:read"})
    assert principal.channels == ("orders.*",)
    assert principal.claims["tenant"] == "t1"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_scopes_may_come_as_a_list_claim(tmp_path: Path) -> None:
    token = jwt.encode(claims(scopes=["audit:read"], scope="cache:read"), SECRET, "HS256")
    assert hs_verifier(tmp_path).verify(token).scopes == {"audit:read", "cache:read"}


def test_rs256_with_pem_files(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    private = write(tmp_path / "private.pem", private_pem(rsa_key))
    public = write(tmp_path / "public.pem", public_pem(rsa_key))
    issuer = TokenIssuer.from_settings(make_settings(tmp_path, jwt_private_key_file=private))
    token = issuer.mint("svc", [Scopes.AUDIT_WRITE], 60)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    for settings in (
        make_settings(tmp_path, jwt_public_key_file=public),
        make_settings(tmp_path, jwt_private_key_file=private),
    ):
        assert TokenVerifier.from_settings(settings).verify(token).scopes == {"audit:write"}


def test_rs256_with_a_jwks_file_picks_the_key_by_kid(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
        return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}

    own_kid = thumbprint(rsa_key.public_key())
    jwks = {"keys": [jwk(rsa_key, own_kid), jwk(other_rsa_key, "second")]}
    verifier = TokenVerifier.from_settings(
        make_settings(tmp_path, jwt_jwks_file=write(tmp_path / "jwks.json", json.dumps(jwks)))
    )
    issuer = TokenIssuer.from_settings(
        make_settings(
            tmp_path, jwt_private_key_file=write(tmp_path / "k.pem", private_pem(rsa_key))
        )
    )
    assert verifier.verify(issuer.mint("a", [], 60)).subject == "a"
    second = jwt.encode(claims(), other_rsa_key, "RS256", headers={"kid": "second"})
    assert verifier.verify(second).subject == "alice"

    unknown = jwt.encode(claims(), other_rsa_key, "RS256", headers={"kid": "gone"})
    assert rejection(verifier, unknown) == "unknown token key id 'gone'"
    swapped = jwt.encode(claims(), other_rsa_key, "RS256", headers={"kid": own_kid})
    assert rejection(verifier, swapped) == "bad token signature"
    no_kid = jwt.encode(claims(), rsa_key, "RS256")
    assert "no kid" in rejection(verifier, no_kid)


def test_expired_tokens_are_rejected_beyond_the_leeway(tmp_path: Path) -> None:
    verifier = hs_verifier(tmp_path, jwt_leeway_seconds=30)
    recent = jwt.encode(claims(exp=int(time.time()) - 10), SECRET, "HS256")
    assert verifier.verify(recent).subject == "alice"
    old = jwt.encode(claims(exp=int(time.time()) - 60), SECRET, "HS256")
    assert rejection(verifier, old) == "token expired"


def test_the_default_leeway_is_a_few_seconds(tmp_path: Path) -> None:
    assert make_settings(tmp_path).jwt_leeway_seconds == 5
    verifier = hs_verifier(tmp_path)
    just_expired = jwt.encode(claims(exp=int(time.time()) - 2), SECRET, "HS256")
    assert verifier.verify(just_expired).subject == "alice"
    expired = jwt.encode(claims(exp=int(time.time()) - 10), SECRET, "HS256")
    assert rejection(verifier, expired) == "token expired"


def signed(payload: str) -> str:
    """An HS256 token over a payload written by hand, so it may hold what JSON encoders refuse."""

    def encoded(part: bytes) -> bytes:
        return base64.urlsafe_b64encode(part).rstrip(b"=")

    signing_input = encoded(b'{"alg":"HS256","typ":"JWT"}') + b"." + encoded(payload.encode())
    signature = hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + encoded(signature)).decode()


ABSURD_TIMES = ["1" + "0" * 400, "1e308", "1e400", "Infinity", "-Infinity", "NaN", "-5", "true"]


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ABSURD_TIMES)
def test_absurd_time_claims_are_refused(tmp_path: Path, claim: str, value: str) -> None:
    now = int(time.time())
    times = {"exp": str(now + 60), "iat": str(now), claim: value}
    payload = '{"iss":"outrigger","sub":"alice",' + ",".join(
        f'"{name}":{number}' for name, number in times.items()
    )
    detail = rejection(hs_verifier(tmp_path), signed(payload + "}"))
    assert detail.startswith(("malformed token", "token expired", "token not valid yet"))


def test_wrong_issuer_and_audience_are_named(tmp_path: Path) -> None:
    verifier = hs_verifier(tmp_path, jwt_audience="audit")
    assert verifier.verify(jwt.encode(claims(aud="audit"), SECRET, "HS256")).subject == "alice"
    detail = rejection(verifier, jwt.encode(claims(aud="audit", iss="evil"), SECRET, "HS256"))
    assert detail == "wrong token issuer: expected 'outrigger'"
    detail = rejection(verifier, jwt.encode(claims(aud="cache"), SECRET, "HS256"))
    assert detail == "wrong token audience: expected 'audit'"
    assert "aud claim is missing" in rejection(verifier, jwt.encode(claims(), SECRET, "HS256"))


def test_audience_is_ignored_when_none_is_configured(tmp_path: Path) -> None:
    token = jwt.encode(claims(aud="anything"), SECRET, "HS256")
    assert hs_verifier(tmp_path).verify(token).subject == "alice"


@pytest.mark.parametrize("missing", ["exp", "iss", "sub"])
def test_required_claims(tmp_path: Path, missing: str) -> None:
    token = jwt.encode(claims(**{missing: None}), SECRET, "HS256")
    assert (
        rejection(hs_verifier(tmp_path), token)
        == f"malformed token: the {missing} claim is missing"
    )


@pytest.mark.parametrize(
    ("claim", "value"), [("scope", ["a"]), ("scopes", "a b"), ("channels", "x"), ("sub", 7)]
)
def test_malformed_claims_are_rejected(tmp_path: Path, claim: str, value: Any) -> None:
    token = jwt.encode(claims(**{claim: value}), SECRET, "HS256")
    assert rejection(hs_verifier(tmp_path), token).startswith("malformed token")


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{b64(signature)}"


def test_algorithm_confusion_is_rejected(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    public = write(tmp_path / "public.pem", public_pem(rsa_key))
    verifier = TokenVerifier.from_settings(make_settings(tmp_path, jwt_public_key_file=public))
    hs_signed_with_public_key = forge({"alg": "HS256", "typ": "JWT"}, claims(), public_pem(rsa_key))
    unsigned = forge({"alg": "none", "typ": "JWT"}, claims(), b"")
    for token in (hs_signed_with_public_key, unsigned):
        assert (
            rejection(verifier, token) == "token algorithm not accepted: this service expects RS256"
        )
    rs_token = jwt.encode(claims(), rsa_key, "RS256")
    assert "expects HS256" in rejection(hs_verifier(tmp_path), rs_token)


def test_bad_signature_and_malformed_tokens(tmp_path: Path) -> None:
    verifier = hs_verifier(tmp_path)
    other = jwt.encode(claims(), "another-secret-that-is-long-enough-too!!", "HS256")
    assert rejection(verifier, other) == "bad token signature"
    header, _, signature = jwt.encode(claims(), SECRET, "HS256").split(".")
    body = base64.urlsafe_b64encode(json.dumps(claims(sub="mallory")).encode()).rstrip(b"=")
    assert rejection(verifier, f"{header}.{body.decode()}.{signature}") == "bad token signature"
    for garbage in ("not-a-jwt", "a.b.c", "Bearer"):
        assert rejection(verifier, garbage).startswith("malformed token")
    assert rejection(verifier, None).startswith("missing bearer token")


# --- keys from settings ---------------------------------------------------------------------


def test_development_key_is_shared_created_private_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "nested" / "data"
    caplog.set_level(logging.WARNING, logger="outrigger.devsecrets")
    token = TokenIssuer.from_settings(make_settings(tmp_path, data_dir=data_dir)).mint(
        "developer", sorted(ALL_SCOPES), 60
    )
    key_file = data_dir / "dev-jwt-secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_bytes()
    verifier, issuer = auth_from_settings(make_settings(tmp_path, data_dir=data_dir))
    assert verifier.verify(token).has_scope(Scopes.PLUGINS_ADMIN)
    assert issuer is not None
    assert key_file.read_bytes() == first
    assert any(str(key_file) in record.getMessage() for record in caplog.records)


def test_another_data_dir_means_another_development_key(tmp_path: Path) -> None:
    token = TokenIssuer.from_settings(make_settings(tmp_path, data_dir=tmp_path / "a")).mint(
        "x", [], 60
    )
    verifier = TokenVerifier.from_settings(make_settings(tmp_path, data_dir=tmp_path / "b"))
    assert rejection(verifier, token) == "bad token signature"


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, env="production")
    for build in (TokenVerifier.from_settings, TokenIssuer.from_settings, auth_from_settings):
        with pytest.raises(SettingsError) as caught:
            build(settings)  # type: ignore[operator]
        assert str(caught.value) == NO_KEY_IN_PRODUCTION
        assert str(caught.value).startswith("OUTRIGGER_JWT_SECRET: production needs a signing key")
        assert "\n" not in str(caught.value)
    assert not (tmp_path / "data").exists()


def test_verification_only_settings_mint_nothing(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    public = write(tmp_path / "public.pem", public_pem(rsa_key))
    settings = make_settings(tmp_path, env="production", jwt_public_key_file=public)
    verifier, issuer = auth_from_settings(settings)
    assert issuer is None
    assert verifier.algorithm == "RS256"
    with pytest.raises(SettingsError, match="OUTRIGGER_JWT_PRIVATE_KEY_FILE"):
        TokenIssuer.from_settings(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_secret": "short"}, "OUTRIGGER_JWT_SECRET: must be at least 32 bytes"),
        ({"jwt_secret": SECRET, "jwt_public_key_file": "public.pem"}, "not both"),
        ({"jwt_secret": SECRET, "jwt_private_key_file": "public.pem"}, "not both"),
        ({"data_dir": "blocked/data"}, "OUTRIGGER_DATA_DIR: cannot create the development signing"),
        ({"jwt_public_key_file": "absent.pem"}, "OUTRIGGER_JWT_PUBLIC_KEY_FILE: cannot read"),
        ({"jwt_public_key_file": "garbage.pem"}, "is not a PEM RSA public key"),
        ({"jwt_private_key_file": "garbage.pem"}, "OUTRIGGER_JWT_PRIVATE_KEY_FILE: "),
        ({"jwt_jwks_file": "garbage.pem"}, "OUTRIGGER_JWT_JWKS_FILE: "),
        ({"jwt_jwks_file": "empty.json"}, "needs RS256 signing keys"),
    ],
)
def test_bad_key_settings_are_one_line(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    write(tmp_path / "public.pem", b"")
    write(tmp_path / "garbage.pem", "-----BEGIN NOTHING-----")
    write(tmp_path / "empty.json", '{"keys": []}')
    write(tmp_path / "blocked", "a file where a directory should be")
    with pytest.raises(SettingsError) as caught:
        auth_from_settings(make_settings(tmp_path, **overrides))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "short" not in str(caught.value)


def test_issuer_rejects_a_bad_ttl_and_registered_extra_claims(tmp_path: Path) -> None:
    issuer = TokenIssuer.from_settings(make_settings(tmp_path, jwt_secret=SECRET))
    with pytest.raises(ValueError, match="ttl_seconds"):
        issuer.mint("a", [], 0)
    with pytest.raises(ValueError, match="exp"):
        issuer.mint("a", [], 60, extra={"exp": 0})


# --- scopes and channels ----------------------------------------------------------------------


def test_admin_satisfies_every_scope() -> None:
    admin = Principal("root", frozenset({Scopes.ADMIN}))
    reader = Principal("r", frozenset({Scopes.EVENTS_READ}))
    assert all(admin.has_scope(scope) for scope in ALL_SCOPES)
    assert reader.has_scope("events:read")
    assert not reader.has_scope("events:write")
    assert len(ALL_SCOPES) == 14


@pytest.mark.parametrize(
    ("pattern", "channel", "allowed"),
    [
        ("orders.eu", "orders.eu", True),
        ("orders.eu", "orders.us", False),
        ("orders.*", "orders.eu", True),
        ("orders.*", "orders.eu.created", False),
        ("orders.*", "orders", False),
        ("orders.e?", "orders.eu", True),
        ("orders.e*.created", "orders.eu.created", True),
        ("orders.**", "orders", True),
        ("orders.**", "orders.eu.created", True),
        ("orders.**", "ordersx.eu", False),
        ("orders.**", "invoices.eu", False),
        ("**", "anything.at.all", True),
        ("Orders", "orders", False),
        ("*", "a.b", False),
    ],
)
def test_channel_patterns(pattern: str, channel: str, allowed: bool) -> None:
    assert channel_allowed(Principal("s", channels=(pattern,)), channel) is allowed


def test_no_channels_claim_grants_no_channel_even_to_admin() -> None:
    assert not channel_allowed(Principal("s", frozenset({Scopes.ADMIN})), "orders")
    assert not channel_allowed(Principal("s", channels=("**",)), "orders..eu")
    assert not channel_allowed(Principal("s", channels=("**",)), "")


# --- FastAPI ---------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    app = FastAPI()
    app.state.auth = hs_verifier(tmp_path)

    @app.exception_handler(OutriggerError)
    async def problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OutriggerError)
        return JSONResponse(exc.problem(), status_code=exc.status, headers=exc.headers)

    router = APIRouter(dependencies=[require_scope(Scopes.EVENTS_READ)])

    @router.get("/v1/events")
    async def read_events() -> dict[str, str]:
        return {"events": "all"}

    @app.post("/v1/events")
    async def append(
        principal: Principal = require_scope(Scopes.EVENTS_WRITE),
    ) -> dict[str, str]:
        return {"by": principal.subject}

    @app.delete("/v1/events")
    async def purge(
        principal: Annotated[Principal, require_scope(Scopes.ADMIN)],
    ) -> dict[str, str]:
        return {"by": principal.subject}

    app.include_router(router)
    return app


def bearer(*scopes: str, subject: str = "alice") -> dict[str, str]:
    token = jwt.encode(claims(sub=subject, scope=" ".join(scopes)), SECRET, "HS256")
    return {"Authorization": f"Bearer {token}"}


async def call(app: FastAPI, method: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, "/v1/events", headers=headers)


async def test_routes_need_a_bearer_token(app: FastAPI) -> None:
    response = await call(app, "GET")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("missing bearer token")
    assert response.headers["www-authenticate"] == "Bearer"
    response = await call(app, "GET", {"Authorization": "Basic YWxpY2U6cHc="})
    assert response.status_code == 401
    assert response.json()["detail"].startswith("malformed Authorization header")
    response = await call(app, "GET", {"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_scopes_are_checked_per_route(app: FastAPI) -> None:
    assert (await call(app, "GET", bearer("events:read"))).json() == {"events": "all"}
    response = await call(app, "POST", bearer("events:read"))
    assert response.status_code == 403
    assert "'events:write'" in response.json()["detail"]
    assert response.json()["required_scope"] == "events:write"
    response = await call(app, "POST", bearer("events:write", subject="bob"))
    assert response.json() == {"by": "bob"}
    assert (await call(app, "POST", bearer("admin"))).status_code == 200
    assert (await call(app, "GET", bearer("cache:read"))).status_code == 403
    assert (await call(app, "DELETE", bearer("events:write"))).status_code == 403
    assert (await call(app, "DELETE", bearer("admin"))).json() == {"by": "alice"}


async def test_bearer_scheme_is_in_openapi(app: FastAPI) -> None:
    schema = app.openapi()
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    operations = schema["paths"]["/v1/events"]
    assert operations["get"]["security"] == [{"bearer": ["events:read"]}]
    assert operations["post"]["security"] == [{"bearer": ["events:write"]}]


async def test_an_app_without_a_verifier_fails_loudly(app: FastAPI) -> None:
    del app.state.auth
    with pytest.raises(RuntimeError, match=r"app\.state\.auth"):
        await call(app, "GET", bearer("events:read"))


def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, jwt_secret=SECRET, jwt_leeway_seconds=0)
    verifier = TokenVerifier.from_settings(settings)
    token = TokenIssuer.from_settings(settings).mint("alice", ["events:read"], 1)
    assert verifier.verify(token).subject == "alice"
    assert verifier.verify(token).subject == "alice"  # the second time from memory
    time.sleep(2.1)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)
