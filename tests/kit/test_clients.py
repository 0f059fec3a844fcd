from __future__ import annotations

import re
import socket
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter

import outrigger
from outrigger import errors
from outrigger.clients import (
    Appended,
    AuditRecord,
    Checkpoint,
    ConsistencyProof,
    HeldLock,
    InclusionProof,
    Job,
    LoadProblem,
    LogPage,
    Mismatch,
    PluginInfo,
    PluginLimits,
    PluginList,
    Receipt,
    RecordedEvent,
    RecordPage,
    RunResult,
    RunUsage,
    ServiceClient,
    Snapshot,
    StoredEntry,
    StreamInfo,
    StreamMetadata,
    StreamPage,
    Verification,
)
from outrigger.clients import audit as audit_client
from outrigger.clients import cache as cache_client
from outrigger.clients.cache_models import FoundEntry
from outrigger.resilience import BulkheadFull, CircuitBreaker, CircuitState, Policy, Retry
from outrigger.telemetry.context import request_id_var

if TYPE_CHECKING:
    from collections.abc import Collection

TOKEN = "token-for-tests"


def problem(error: errors.OutriggerError, request: Request) -> JSONResponse:
    return JSONResponse(
        error.problem(request.url.path),
        status_code=error.status,
        headers=error.headers,
        media_type="application/problem+json",
    )


class Upstream:
    """A small service built inline: it records what it received and fails on demand."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self.failures_left = 0
        self.app = FastAPI()
        self.app.middleware("http")(self._record)
        routes = self.app.router
        routes.add_api_route("/v1/echo", self.echo, methods=["GET", "POST"])
        routes.add_api_route("/v1/streams/{stream_id}", self.missing, methods=["GET"])
        routes.add_api_route("/v1/streams/{stream_id}", self.conflict, methods=["POST"])
        routes.add_api_route("/v1/records", self.invalid, methods=["PUT"])
        routes.add_api_route("/v1/flaky", self.flaky, methods=["GET", "POST"])
        routes.add_api_route("/v1/busy", self.busy, methods=["GET"])
        routes.add_api_route("/v1/crash", self.crash, methods=["GET"])
        routes.add_api_route("/v1/not-json", self.not_json, methods=["GET"])

    async def _record(self, request: Request, call_next: Any) -> Any:
        self.seen.append(request)
        return await call_next(request)

    async def echo(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        return {
            "headers": dict(request.headers),
            "body": body.decode(),
            "query": str(request.query_params),
        }

    async def missing(self, stream_id: str, request: Request) -> JSONResponse:
        return problem(errors.NotFound(f'stream "{stream_id}" does not exist'), request)

    async def conflict(self, stream_id: str, request: Request) -> JSONResponse:
        error = errors.Conflict(
            f'expected_version 4 but stream "{stream_id}" is at 6', actual_version=6
        )
        return problem(error, request)

    async def invalid(self, request: Request) -> JSONResponse:
        field = {"location": "body", "field": "action", "message": "required", "type": "missing"}
        return problem(errors.InvalidInput("action: required", errors=[field]), request)

    async def flaky(self, request: Request) -> Any:
        if self.failures_left > 0:
            self.failures_left -= 1
            return problem(errors.DatabaseError("database unavailable: restarting"), request)
        return {"ok": True}

    async def busy(self, request: Request) -> JSONResponse:
        error = errors.InfrastructureError("overloaded", headers={"Retry-After": "3"})
        return problem(error, request)

    async def crash(self) -> PlainTextResponse:
        return PlainTextResponse("upstream proxy exploded", status_code=502)

    async def not_json(self) -> PlainTextResponse:
        return PlainTextResponse("hello")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client(upstream: Upstream, policy: Policy | None = None, **options: Any) -> ServiceClient:
    return ServiceClient(
        "http://upstream.test",
        token=TOKEN,
        policy=policy or Policy("upstream"),
        transport=httpx.ASGITransport(app=upstream.app),
        **options,
    )


async def test_every_request_carries_the_token_a_request_id_and_json(upstream: Upstream) -> None:
    async with client(upstream, headers={"User-Agent": "outrigger-tests"}) as events:
        first = events._json(await events._request("POST", "/v1/echo", json={"n": 1}))
        second = events._json(await events._request("GET", "/v1/echo", params={"from": 3}))

    assert first["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert first["headers"]["content-type"] == "application/json"
    assert first["headers"]["user-agent"] == "outrigger-tests"
    assert first["body"] == '{"n":1}'
    assert second["query"] == "from=3"
    ids = {first["headers"]["x-request-id"], second["headers"]["x-request-id"]}
    assert len(ids) == 2
    assert all(len(request_id) >= 16 for request_id in ids)


async def test_a_given_or_current_request_id_is_kept(upstream: Upstream) -> None:
    async with client(upstream) as events:
        given = await events._request("GET", "/v1/echo", headers={"X-Request-ID": "req-1"})
        token = request_id_var.set("inbound-7")
        try:
            current = await events._request("GET", "/v1/echo")
        finally:
            request_id_var.reset(token)

    assert events._json(given)["headers"]["x-request-id"] == "req-1"
    assert events._json(current)["headers"]["x-request-id"] == "inbound-7"


async def test_the_trace_context_is_propagated(upstream: Upstream) -> None:
    tracer = TracerProvider().get_tracer("tests")
    async with client(upstream) as events:
        with tracer.start_as_current_span("caller") as span:
            response = await events._request("GET", "/v1/echo")

    trace_id = format(span.get_span_context().trace_id, "032x")
    assert trace_id in events._json(response)["headers"]["traceparent"]


async def test_a_not_found_problem_becomes_not_found(upstream: Upstream) -> None:
    async with client(upstream) as events:
        with pytest.raises(errors.NotFound) as raised:
            await events._request("GET", "/v1/streams/order-7")

    assert raised.value.detail == 'stream "order-7" does not exist'
    assert any("GET http://upstream.test/v1/streams/order-7" in n for n in raised.value.__notes__)


async def test_a_conflict_keeps_its_extension_members(upstream: Upstream) -> None:
    async with client(upstream) as events:
        with pytest.raises(errors.Conflict) as raised:
            await events._request("POST", "/v1/streams/order-7", json=[])

    assert raised.value.extensions == {"actual_version": 6}
    assert raised.value.problem()["actual_version"] == 6
    assert "is at 6" in raised.value.detail


async def test_invalid_input_keeps_its_field_errors(upstream: Upstream) -> None:
    async with client(upstream) as records:
        with pytest.raises(errors.InvalidInput) as raised:
            await records._request("PUT", "/v1/records", json={})

    assert raised.value.errors == [
        {"location": "body", "field": "action", "message": "required", "type": "missing"}
    ]


async def test_an_unavailable_problem_becomes_an_infrastructure_error(upstream: Upstream) -> None:
    async with client(upstream) as events:
        with pytest.raises(errors.InfrastructureError, match="overloaded") as raised:
            await events._request("GET", "/v1/busy")

    assert type(raised.value) is errors.InfrastructureError
    assert raised.value.headers["Retry-After"] == "3"


async def test_an_error_without_a_problem_body_still_says_what_happened(
    upstream: Upstream,
) -> None:
    async with client(upstream) as events:
        with pytest.raises(errors.ExternalServiceError) as raised:
            await events._request("GET", "/v1/crash")

    assert raised.value.detail == (
        "GET http://upstream.test/v1/crash answered 502 Bad Gateway: upstream proxy exploded"
    )


async def test_an_unexpected_status_or_body_is_an_upstream_failure(upstream: Upstream) -> None:
    async with client(upstream) as events:
        with pytest.raises(errors.ExternalServiceError, match="answered 200 OK"):
            await events._request("GET", "/v1/echo", expect=(201,))
        response = await events._request("GET", "/v1/not-json")
        with pytest.raises(errors.ExternalServiceError, match="not JSON"):
            events._json(response)


async def test_an_idempotent_request_is_retried_through_a_503(
    upstream: Upstream, sleeps: Sleeps
) -> None:
    upstream.failures_left = 2
    retrying = Policy("upstream", retry=Retry(attempts=3, sleep=sleeps))

    async with client(upstream, retrying) as events:
        response = await events._request("GET", "/v1/flaky")

    assert events._json(response) == {"ok": True}
    assert len(upstream.seen) == 3
    assert len({request.headers["x-request-id"] for request in upstream.seen}) == 1


async def test_a_post_that_reached_the_server_is_not_retried(
    upstream: Upstream, sleeps: Sleeps
) -> None:
    upstream.failures_left = 1
    retrying = Policy("upstream", retry=Retry(attempts=3, sleep=sleeps))

    async with client(upstream, retrying) as events:
        with pytest.raises(errors.DatabaseError, match="restarting"):
            await events._request("POST", "/v1/flaky")

    assert len(upstream.seen) == 1
    assert sleeps.delays == []


async def test_repeated_503s_open_the_breaker_and_4xx_do_not(upstream: Upstream) -> None:
    breaker = CircuitBreaker("upstream-503", failure_threshold=3, reset_timeout=60)
    async with client(upstream, Policy("upstream", breaker=breaker)) as events:
        for _ in range(5):
            with pytest.raises(errors.NotFound):
                await events._request("GET", "/v1/streams/order-7")
        assert breaker.state is CircuitState.CLOSED

        upstream.failures_left = 100
        for _ in range(3):
            with pytest.raises(errors.DatabaseError):
                await events._request("GET", "/v1/flaky")
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(errors.CircuitOpen, match='circuit "upstream-503" is open'):
            await events._request("GET", "/v1/flaky")

    assert len(upstream.seen) == 8


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_an_external_service_error_retried_even_for_post(
    sleeps: Sleeps,
) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    retrying = Policy("nowhere", retry=Retry(attempts=3, sleep=sleeps))

    async with ServiceClient(url, policy=retrying, timeout=2.0) as nowhere:
        with pytest.raises(
            errors.ExternalServiceError, match=re.escape(f"cannot reach {url}")
        ) as raised:
            await nowhere._request("POST", "/v1/records", json={"action": "x"})

    assert type(raised.value) is errors.ExternalServiceError
    assert len(sleeps.delays) == 2


async def test_a_read_timeout_is_a_timeout_naming_the_service() -> None:
    def never_answers(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    transport = httpx.MockTransport(never_answers)
    async with ServiceClient(
        "http://slow.test", policy=Policy("slow"), transport=transport
    ) as slow:
        with pytest.raises(errors.Timeout, match=re.escape("no answer from http://slow.test")):
            await slow._request("GET", "/v1/anything")


async def test_a_remote_problem_type_defined_outside_errors_is_recognised(
    upstream: Upstream,
) -> None:
    async def full(request: Request) -> JSONResponse:
        return problem(BulkheadFull('bulkhead "db" is full'), request)

    upstream.app.router.add_api_route("/v1/full", full, methods=["GET"])
    async with client(upstream) as events:
        with pytest.raises(BulkheadFull, match='bulkhead "db" is full'):
            await events._request("GET", "/v1/full")


async def test_without_a_policy_the_named_one_for_the_service_is_used() -> None:
    class AuditClient(ServiceClient):
        service = "audit-client-test"

    async with AuditClient("http://a.test") as audit, ServiceClient("http://b.test:81") as other:
        assert audit.policy.name == "audit-client-test"
        assert other.policy.name == "b.test:81"
        assert audit.policy.retry is not None
        assert audit.policy.breaker is not None


async def test_a_body_that_does_not_fit_the_model_is_an_upstream_failure_naming_the_field(
    upstream: Upstream,
) -> None:
    async with client(upstream) as events:
        response = await events._request("GET", "/v1/echo")
        with pytest.raises(errors.ExternalServiceError) as raised:
            events._model(Appended, response)

    assert raised.value.detail == (
        "GET http://upstream.test/v1/echo answered a body that does not fit Appended: "
        "stream_id: Field required"
    )


def test_the_package_ships_its_py_typed_marker() -> None:
    package = Path(outrigger.__file__).parent
    assert (package / "py.typed").is_file()
    project = tomllib.loads((package.parent / "pyproject.toml").read_text())
    assert "outrigger" in project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]


def inlined(node: Any, definitions: dict[str, Any]) -> Any:
    """A JSON schema with its references replaced by what they name, without the prose (and
    the defaults, which FastAPI leaves out of response schemas; `required` still says)."""
    if isinstance(node, list):
        return [inlined(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return inlined(definitions[node["$ref"].rsplit("/", 1)[1]], definitions)
    return {
        key: sorted(value) if key == "required" else inlined(value, definitions)
        for key, value in node.items()
        if key not in ("title", "description", "default", "$defs")
    }


@pytest.fixture(scope="module")
def openapi_schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The schemas of each service's OpenAPI document, by service."""
    from services.audit.app import build_app as audit_app
    from services.cache.app import build_app as cache_app
    from services.event_store.app import build_app as event_store_app
    from services.plugin_executor.app import build_app as plugin_executor_app
    from tests.audit.api_support import settings_for as audit_settings
    from tests.cache.http_support import cache_settings
    from tests.event_store.api_support import settings_for
    from tests.plugin_executor.api_support import plugin_settings
    from tests.plugin_executor.fake_sandbox import InProcessSandbox

    tmp_path = tmp_path_factory.mktemp("openapi")
    database = f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"
    documents = {
        "event-store": event_store_app(settings_for(database, tmp_path)).openapi(),
        "cache": cache_app(cache_settings("memory://", data_dir=tmp_path)).openapi(),
        "audit": audit_app(audit_settings(database, tmp_path)).openapi(),
        "plugin-executor": plugin_executor_app(
            plugin_settings(tmp_path / "plugins"), sandbox=InProcessSandbox()
        ).openapi(),
    }
    return {name: doc["components"]["schemas"] for name, doc in documents.items()}


SDK_ONLY_FIELDS = {Appended: {"replayed"}}  # from the status code: 200 is a replay
# JSON objects of any shape (a plugin's schemas, its result): the service documents what a JSON
# value may hold (no NUL, 64-bit integers), the SDK takes any object it decodes
JSON_OBJECT_FIELDS = {
    ("plugin-executor", "PluginOut"): {"input_schema", "output_schema"},
    ("plugin-executor", "RunOut"): {"result"},
    ("plugin-executor", "JobOut"): {"result"},
}
ANY_JSON_OBJECT = {"additionalProperties": True, "type": "object"}


@pytest.mark.parametrize(
    ("model", "service", "schema"),
    [
        (Appended, "event-store", "AppendOut"),
        (RecordedEvent, "event-store", "EventOut"),
        (StreamPage, "event-store", "StreamPageOut"),
        (LogPage, "event-store", "LogPageOut"),
        (StreamMetadata, "event-store", "MetadataOut"),
        (StreamInfo, "event-store", "StreamInfoOut"),
        (Snapshot, "event-store", "SnapshotOut"),
        (StoredEntry, "cache", "StoredEntry"),
        (FoundEntry, "cache", "FoundEntry"),
        (HeldLock, "cache", "HeldLock"),
        (cache_client._Found, "cache", "MgetResponse"),
        (cache_client._Stored, "cache", "MsetResponse"),
        (cache_client._Invalidated, "cache", "Invalidated"),
        (AuditRecord, "audit", "RecordOut"),
        (RecordPage, "audit", "RecordPageOut"),
        (Receipt, "audit", "ReceiptOut"),
        (audit_client._Receipts, "audit", "ReceiptsOut"),
        (Checkpoint, "audit", "CheckpointOut"),
        (InclusionProof, "audit", "InclusionProofOut"),
        (ConsistencyProof, "audit", "ConsistencyProofOut"),
        (Mismatch, "audit", "MismatchOut"),
        (Verification, "audit", "VerificationOut"),
        (PluginList, "plugin-executor", "PluginsOut"),
        (PluginInfo, "plugin-executor", "PluginOut"),
        (PluginLimits, "plugin-executor", "LimitsOut"),
        (LoadProblem, "plugin-executor", "ProblemOut"),
        (RunResult, "plugin-executor", "RunOut"),
        (RunUsage, "plugin-executor", "UsageOut"),
        (Job, "plugin-executor", "JobOut"),
    ],
)
def test_each_model_is_the_json_schema_the_service_documents(
    model: type[Any], service: str, schema: str, openapi_schemas: dict[str, dict[str, Any]]
) -> None:
    documented = {
        name: json_objects_as_any(body, JSON_OBJECT_FIELDS.get((service, name), ()))
        for name, body in openapi_schemas[service].items()
    }
    ours = TypeAdapter(model).json_schema()
    for name in SDK_ONLY_FIELDS.get(model, ()):
        del ours["properties"][name]
    assert inlined(ours, ours.get("$defs", {})) == inlined(documented[schema], documented)


def json_objects_as_any(schema: dict[str, Any], names: Collection[str]) -> dict[str, Any]:
    """`schema` with the properties `names`, each documented as a JSON object (or null) whose
    members are JSON values, stated as what the SDK decodes them into: any object."""
    if not names:
        return schema
    properties = dict(schema["properties"])
    for name in names:
        documented = properties[name]
        variants = documented.get("anyOf", [documented])
        objects = [variant for variant in variants if variant.get("type") == "object"]
        assert len(objects) == 1, f"{name}: {documented}"
        [values] = objects[0]["patternProperties"].values()
        assert values["$ref"].split("/")[-1].startswith("JsonValue"), f"{name}: {documented}"
        nullable = [{"type": "null"}] if {"type": "null"} in variants else []
        properties[name] = {"anyOf": [ANY_JSON_OBJECT, *nullable]} if nullable else ANY_JSON_OBJECT
    return {**schema, "properties": properties}
