"""`EventStoreClient`: streams, the global log, subscriptions, snapshots and subjects.

    async with EventStoreClient("http://127.0.0.1:8002", token=token) as events:
        await events.append("order-7", [{"type": "Placed", "data": {"total": 42}}],
                            expected_version="no_stream")
        page = await events.read_stream("order-7")
        async for event in events.subscribe(category="order"):
            print(event["global_position"], event["type"])

`append` gives every event without an `id` a new one before sending, so resending the same
batch after a failure is safe: the store recognises it and answers with the first result. The
client does so itself, under its retry policy, when an answer is lost (a dropped connection,
a timeout, a 503); to retry after `append` has raised, pass the events with their `id`s.
`subscribe` follows the global log over Server-Sent Events and reconnects by itself (with
`Last-Event-ID`, so nothing is missed or repeated) when the connection drops or the server
drops a client that fell behind.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from outrigger.clients.base import ServiceClient
from outrigger.errors import InfrastructureError, NotFound
from outrigger.sse import frames

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence

ExpectedVersion = str | int
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


def _stream(stream_id: str) -> str:
    return f"/v1/streams/{quote(stream_id, safe='')}"


class EventStoreClient(ServiceClient):
    """The event store's HTTP API (see the module docstring); every method raises the
    `outrigger.errors` class of the problem the service answered (`Conflict`, `Gone`, ...)."""

    service = "event-store"

    async def append(
        self,
        stream_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        expected_version: ExpectedVersion = "any",
    ) -> dict[str, Any]:
        """Appends `{"type", "data", "metadata"?, "id"?, "schema_version"?}` events.

        Returns `{stream_id, first_version, last_version, replayed}`; `replayed` is True when
        the store recognised a retry of an earlier append.
        """
        batch = [{"id": str(uuid.uuid4()), **event} for event in events]
        body = {"expected_version": expected_version, "events": batch}
        response = await self._request(
            "POST", f"{_stream(stream_id)}/events", json=body, expect=(200, 201), idempotent=True
        )
        return {**self._json(response), "replayed": response.status_code == 200}

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        direction: str = "forward",
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page: `{stream_id, events, next_version, next}` (`next_version` None at the end)."""
        params: dict[str, Any] = {"direction": direction, "limit": limit}
        if from_version is not None:
            params["from_version"] = from_version
        path = f"{_stream(stream_id)}/events"
        return dict(self._json(await self._request("GET", path, params=params)))

    async def stream_info(self, stream_id: str) -> dict[str, Any]:
        return dict(self._json(await self._request("GET", _stream(stream_id))))

    async def set_metadata(
        self,
        stream_id: str,
        *,
        max_age: int | None = None,
        max_count: int | None = None,
        truncate_before: int | None = None,
        custom: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Replaces the stream's metadata (unset fields are cleared); returns its info."""
        body = {
            "max_age": max_age,
            "max_count": max_count,
            "truncate_before": truncate_before,
            "custom": dict(custom or {}),
        }
        response = await self._request("PUT", f"{_stream(stream_id)}/metadata", json=body)
        return dict(self._json(response))

    async def delete(
        self, stream_id: str, *, hard: bool = False, expected_version: ExpectedVersion = "any"
    ) -> None:
        """Soft-deletes the stream, or tombstones it for good with `hard=True`."""
        params = {"hard": "true" if hard else "false", "expected_version": str(expected_version)}
        await self._request("DELETE", _stream(stream_id), params=params, expect=(204,))

    async def read_log(
        self,
        *,
        after: int = 0,
        limit: int = 1000,
        category: str | None = None,
        event_type: str | None = None,
    ) -> dict[str, Any]:
        """A page of the global log: `{events, next_after, next}`."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if category is not None:
            params["category"] = category
        if event_type is not None:
            params["type"] = event_type
        return dict(self._json(await self._request("GET", "/v1/log", params=params)))

    async def save_snapshot(self, stream_id: str, version: int, state: Any) -> dict[str, Any]:
        body = {"version": version, "state": state}
        response = await self._request("PUT", f"{_stream(stream_id)}/snapshot", json=body)
        return dict(self._json(response))

    async def load_snapshot(self, stream_id: str) -> dict[str, Any] | None:
        """The stream's snapshot `{stream_id, version, state, created}`, or None."""
        try:
            response = await self._request("GET", f"{_stream(stream_id)}/snapshot")
        except NotFound:
            return None
        return dict(self._json(response))

    async def forget_subject(self, subject: str) -> None:
        """Erases the subject's sensitive fields from every event, for good (scope `admin`)."""
        path = f"/v1/subjects/{quote(subject, safe='')}"
        await self._request("DELETE", path, expect=(204,))

    async def subscribe(
        self,
        *,
        after: int = 0,
        category: str | None = None,
        event_type: str | None = None,
        stream_id: str | None = None,
        from_version: int | None = None,
        idle_timeout: float = 60.0,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Events of the global log after position `after` (or of one stream, from
        `from_version`), then live, for as long as the caller iterates.

        Reconnects after a dropped connection or a `dropped` event, resuming after the last
        event received. A connection silent for `idle_timeout` seconds (no event, no heartbeat)
        counts as dropped. Errors the service answers (401, 403, 410 ...) are raised, and so is
        `ExternalServiceError` (`Timeout`) when the first connection cannot be made at all.
        """
        params: dict[str, Any]
        if stream_id is not None:
            path, params = f"{_stream(stream_id)}/subscribe", {"from_version": from_version}
        else:
            path = "/v1/subscribe"
            params = {"after": after, "category": category, "type": event_type}
        query = {key: value for key, value in params.items() if value is not None}
        last: int | None = None
        failures = 0
        first = True
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            try:
                async for event in self._follow(path, query, headers, idle_timeout):
                    failures = 0
                    last = event["global_position"]
                    yield event
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if first:  # a wrong URL, or the service is not running: say so, do not wait
                    raise self._unreachable("GET", path, exc) from exc
            except (httpx.TransportError, InfrastructureError):
                pass  # reconnect, resuming after `last`
            first = False
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    async def _follow(
        self, path: str, query: dict[str, Any], headers: dict[str, str], idle_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """One connection's events; returns when the server ends the stream."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=idle_timeout)
        request = self._http.build_request(
            "GET", path, params=query, headers=headers, timeout=timeout
        )
        response = await self._http.send(request, stream=True)
        try:
            if response.status_code != 200:
                await response.aread()
                raise self._failure("GET", path, response)
            async for frame in frames(response.aiter_lines()):
                if frame.event is None and frame.id is not None:
                    yield frame.json()
                elif frame.event == "dropped":
                    return
        finally:
            await response.aclose()
