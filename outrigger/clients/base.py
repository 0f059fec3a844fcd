"""`ServiceClient`: the async HTTP client every Outrigger service client is built on.

A subclass adds typed methods over `_request` and `_model`, e.g.::

    class EventStoreClient(ServiceClient):
        service = "event-store"

        async def stream_info(self, stream_id: str) -> StreamInfo:
            return self._model(StreamInfo, await self._request("GET", f"/v1/streams/{stream_id}"))

    async with EventStoreClient("http://127.0.0.1:8002", token=token) as events:
        await events.read("order-7")
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
from opentelemetry import propagate
from pydantic import TypeAdapter, ValidationError

from outrigger import errors
from outrigger.resilience import policy as named_policy
from outrigger.telemetry.context import current_request_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Mapping
    from types import TracebackType

    from outrigger.resilience import Policy

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "errors"})


class ServiceClient:
    """One connection pool to one service, under one resilience policy.

    Every request carries the bearer token, an `X-Request-ID` (the caller's, else the current
    request's, else a new one; the same for all attempts of a call) and the W3C trace context.
    `policy` defaults to the process-wide named policy `service` (else the URL's host:port);
    `timeout` bounds each HTTP exchange (connect, read, write, pool wait).
    """

    service: ClassVar[str | None] = None

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        policy: Policy | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or named_policy(self.service or urlsplit(self.base_url).netloc)
        default_headers = {"Accept": "application/json, application/problem+json"}
        if token is not None:
            default_headers["Authorization"] = f"Bearer {token}"
        default_headers.update(headers or {})
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=default_headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connection pool; the client cannot be used afterwards."""
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Collection[int] = (200,),
        idempotent: bool = False,
        waits: float = 0.0,
    ) -> httpx.Response:
        """Sends one request under the policy and returns the response if its status is expected.

        `json` is serialised with orjson; `content` sends raw bytes instead (not both). `waits`
        is how many seconds the service may hold the answer on purpose (a lock's `wait_ms`):
        the read timeout is that much longer.
        Failed attempts are retried only for idempotent methods or requests marked `idempotent`
        (sending them twice does what sending once does, e.g. events with their ids), or for
        any method when the request never reached the server (connection refused, pool
        exhausted). Raises:

        - the `outrigger.errors` class named by an RFC 9457 problem body's `type` (else chosen
          by status), with the body's `detail`, `errors` and extension members kept;
        - `ExternalServiceError` for any other 5xx or unexpected status, and when the service
          cannot be reached; `Timeout` when it does not answer in time;
        - `CircuitOpen` or `BulkheadFull` when the policy refuses the call.

        5xx answers, timeouts and connection failures count against the circuit breaker;
        4xx answers do not.
        """
        method = method.upper()
        outgoing = _outgoing(headers)
        if json is not None:
            if content is not None:
                raise TypeError("give either json or content, not both")
            content = orjson.dumps(json)
            outgoing["Content-Type"] = "application/json"

        timeout = self._http.timeout
        if waits > 0 and timeout.read is not None:
            read = timeout.read + waits
            timeout = httpx.Timeout(
                connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool
            )

        async def exchange() -> httpx.Response:
            try:
                response = await self._http.request(
                    method, path, content=content, params=params, headers=outgoing, timeout=timeout
                )
            except httpx.RequestError as exc:
                raise self._unreachable(method, path, exc) from exc
            if response.status_code not in expect:
                raise self._failure(method, path, response)
            return response

        def retryable(exc: BaseException) -> bool:
            return (
                idempotent or method in IDEMPOTENT_METHODS or isinstance(exc.__cause__, _NEVER_SENT)
            )

        return await self.policy.call(exchange, retry_if=retryable)

    @contextlib.asynccontextmanager
    async def _open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Sends one request whose answer is read as it arrives (NDJSON) and yields its lines.

        Opening it is one `_request` exchange, under the policy and with the same headers and
        errors (a 200 is expected). Once lines flow nothing is retried: a connection that breaks
        before the body ends raises `ExternalServiceError` (`Timeout` if the service stops
        sending for the client's read timeout), so a caller never takes part of an answer for
        all of it. The response is closed when the block ends.
        """
        method = method.upper()
        outgoing = _outgoing(headers)

        async def exchange() -> httpx.Response:
            request = self._http.build_request(method, path, params=params, headers=outgoing)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.RequestError as exc:
                raise self._unreachable(method, path, exc) from exc
            if response.status_code != 200:
                await response.aread()
                await response.aclose()
                raise self._failure(method, path, response)
            return response

        def retryable(exc: BaseException) -> bool:
            return method in IDEMPOTENT_METHODS or isinstance(exc.__cause__, _NEVER_SENT)

        response = await self.policy.call(exchange, retry_if=retryable)

        async def lines() -> AsyncIterator[str]:
            try:
                async for line in response.aiter_lines():
                    yield line
            except httpx.TimeoutException as exc:
                raise errors.Timeout(
                    f"{self.base_url} stopped sending its answer to {method} {path}: {exc!r}"
                ) from exc
            except httpx.TransportError as exc:
                raise errors.ExternalServiceError(
                    f"the answer of {self.base_url} to {method} {path} broke off: {exc!r}"
                ) from exc

        try:
            yield lines()
        finally:
            await response.aclose()

    def _json(self, response: httpx.Response) -> Any:
        """The response body parsed as JSON, or `ExternalServiceError` if it is not JSON."""
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            request = response.request
            raise errors.ExternalServiceError(
                f"{request.method} {request.url} answered {response.status_code} "
                f"with a body that is not JSON: {exc}"
            ) from exc

    def _model(self, model: type[T], response: httpx.Response) -> T:
        """The response body decoded into `model` (see `decode`)."""
        request = response.request
        return decode(model, response.content, f"{request.method} {request.url}")

    def _where(self, method: str, path: str) -> str:
        return f"{method} {self.base_url}{path}"

    def _unreachable(
        self, method: str, path: str, exc: httpx.RequestError
    ) -> errors.OutriggerError:
        if isinstance(exc, httpx.TimeoutException):
            return errors.Timeout(
                f"no answer from {self.base_url} in time to {method} {path}: {exc!r}"
            )
        return errors.ExternalServiceError(
            f"cannot reach {self.base_url} for {method} {path}: {exc!r}"
        )

    def _failure(self, method: str, path: str, response: httpx.Response) -> errors.OutriggerError:
        status = response.status_code
        where = f"{self._where(method, path)} answered {status} {response.reason_phrase}"
        problem = _problem(response)
        if problem is None:
            body = response.text[:200].strip()
            cls = _class_for(None, status)
            error = cls(f"{where}" + (f": {body}" if body else ""))
        else:
            cls = _class_for(problem.get("type"), status)
            detail = problem.get("detail") or problem.get("title") or where
            field_errors = problem.get("errors")
            error = cls(
                str(detail), errors=field_errors if isinstance(field_errors, list) else None
            )
            error.extensions.update(
                (key, value) for key, value in problem.items() if key not in _PROBLEM_MEMBERS
            )
        if retry_after := response.headers.get("Retry-After"):
            error.headers["Retry-After"] = retry_after
        error.add_note(f"{where} (request id {response.request.headers.get('X-Request-ID')})")
        return error


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def decode(model: type[T], body: bytes | str, source: str) -> T:
    """`body`, JSON, decoded into the dataclass `model` in one pass (pydantic-core parses the
    JSON straight into the dataclasses, datetimes and UUIDs). Members the model does not know
    are ignored, so a service may add some. A body that does not fit is `ExternalServiceError`
    naming `source` and the first misfit."""
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS.setdefault(model, TypeAdapter(model))
    try:
        decoded: T = adapter.validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        raise errors.ExternalServiceError(
            f"{source} answered a body that does not fit {model.__name__}: {where}: {first['msg']}"
        ) from exc
    return decoded


def _outgoing(headers: Mapping[str, str] | None) -> dict[str, str]:
    """`headers` plus the request id (the caller's, else the current request's, else a new one)
    and the W3C trace context."""
    outgoing: dict[str, str] = dict(headers or {})
    if not any(key.lower() == "x-request-id" for key in outgoing):
        outgoing["X-Request-ID"] = current_request_id() or uuid.uuid4().hex
    propagate.inject(outgoing)
    return outgoing


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type not in ("application/problem+json", "application/json"):
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not ("type" in body or "status" in body):
        return None
    return body


def _class_for(problem_type: object, status: int) -> type[errors.OutriggerError]:
    """The class a problem `type` names, else the status's; every 5xx is an infrastructure
    error, so that it counts against the breaker and may be retried."""
    cls: type[errors.OutriggerError] | None = None
    if isinstance(problem_type, str) and "/problems/" in problem_type:
        cls = _problem_classes().get(problem_type.rsplit("/problems/", 1)[1])
    if cls is None:
        cls = errors.class_for_status(status)
    if cls is None:
        cls = errors.BadRequest if 400 <= status < 500 else errors.ExternalServiceError
    if status >= 500 and not issubclass(cls, errors.InfrastructureError):
        cls = errors.ExternalServiceError
    return cls


def _problem_classes() -> dict[str, type[errors.OutriggerError]]:
    """Every known error class by slug, including those defined outside `outrigger.errors`;
    on a shared slug the most general class wins."""
    found: dict[str, type[errors.OutriggerError]] = {}
    level: list[type[errors.OutriggerError]] = [errors.OutriggerError]
    while level:
        for cls in level:
            found.setdefault(cls.slug, cls)
        level = [sub for cls in level for sub in cls.__subclasses__()]
    return found
