"""`EventStoreClient`: streams, the global log, subscriptions, snapshots and subjects.

    async with EventStoreClient("http://127.0.0.1:8002", token=token) as events:
        await events.append("order-7", [{"type": "Placed", "data": {"total": 42}}],
                            expected_version="no_stream")
        page = await events.read_stream("order-7")
        async for event in events.subscribe(category="order"):
            print(event.global_position, event.type)

Every method returns the frozen dataclasses of `outrigger.clients.event_store_models`.

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
import contextlib
import dataclasses
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from outrigger.clients.base import ServiceClient, decode
from outrigger.clients.event_store_models import (
    Appended,
    Direction,
    ExpectedVersion,
    LogPage,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamPage,
)
from outrigger.errors import InfrastructureError, NotFound
from outrigger.sse import frames

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping, Sequence

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
    ) -> Appended:
        """Appends `{"type", "data", "metadata"?, "id"?, "schema_version"?}` events, all or
        nothing, if the stream is at `expected_version` (else `Conflict`, with the stream's
        `actual_version` among its extensions)."""
        batch = [{"id": str(uuid.uuid4()), **event} for event in events]
        body = {"expected_version": expected_version, "events": batch}
        response = await self._request(
            "POST", f"{_stream(stream_id)}/events", json=body, expect=(200, 201), idempotent=True
        )
        appended = self._model(Appended, response)
        if response.status_code == 200:
            return dataclasses.replace(appended, replayed=True)
        return appended

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        direction: Direction = "forward",
        limit: int = 100,
    ) -> StreamPage:
        """A page of the stream's visible events from `from_version` (default: its first, or
        its last going `backward`); read on from `page.next_version` until it is None."""
        params: dict[str, Any] = {"direction": direction, "limit": limit}
        if from_version is not None:
            params["from_version"] = from_version
        path = f"{_stream(stream_id)}/events"
        return self._model(StreamPage, await self._request("GET", path, params=params))

    async def stream_info(self, stream_id: str) -> StreamInfo:
        """The stream's version, times, metadata and delete state (also once deleted)."""
        return self._model(StreamInfo, await self._request("GET", _stream(stream_id)))

    async def set_metadata(
        self,
        stream_id: str,
        *,
        max_age: int | None = None,
        max_count: int | None = None,
        truncate_before: int | None = None,
        custom: Mapping[str, Any] | None = None,
    ) -> StreamInfo:
        """Replaces the stream's metadata (unset fields are cleared); returns its info."""
        body = {
            "max_age": max_age,
            "max_count": max_count,
            "truncate_before": truncate_before,
            "custom": dict(custom or {}),
        }
        response = await self._request("PUT", f"{_stream(stream_id)}/metadata", json=body)
        return self._model(StreamInfo, response)

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
    ) -> LogPage:
        """A page of the global log after position `after`; read on from `page.next_after`."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if category is not None:
            params["category"] = category
        if event_type is not None:
            params["type"] = event_type
        return self._model(LogPage, await self._request("GET", "/v1/log", params=params))

    async def save_snapshot(self, stream_id: str, version: int, state: Any) -> Snapshot:
        """Stores `state` as folded up to `version` (a version the stream has)."""
        body = {"version": version, "state": state}
        response = await self._request("PUT", f"{_stream(stream_id)}/snapshot", json=body)
        return self._model(Snapshot, response)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The stream's latest snapshot, or None if it has none."""
        try:
            response = await self._request("GET", f"{_stream(stream_id)}/snapshot")
        except NotFound:
            return None
        return self._model(Snapshot, response)

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
    ) -> AsyncGenerator[RecordedEvent, None]:
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
            following = self._follow(path, query, headers, idle_timeout, first=first)
            async with contextlib.aclosing(following) as connection:
                async for position, data in connection:
                    last, failures = position, 0
                    yield decode(RecordedEvent, data, f"GET {self.base_url}{path}")
            first = False
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    async def _follow(
        self,
        path: str,
        query: dict[str, Any],
        headers: dict[str, str],
        idle_timeout: float,
        *,
        first: bool,
    ) -> AsyncGenerator[tuple[int, str], None]:
        """One connection's events, as their positions (the frames' ids) and JSON texts.

        Ends when the server ends the stream, drops this client, or the connection fails; raises
        the problem the service answers, and `ExternalServiceError` if the `first` connection
        cannot be made at all (a wrong URL, or the service is not running: say so at once).
        """
        timeout = httpx.Timeout(self._http.timeout.connect, read=idle_timeout)
        request = self._http.build_request(
            "GET", path, params=query, headers=headers, timeout=timeout
        )
        try:
            response = await self._http.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if first:
                raise self._unreachable("GET", path, exc) from exc
            return
        except httpx.TransportError:
            return
        try:
            if response.status_code != 200:
                await response.aread()
                raise self._failure("GET", path, response)
            async for frame in frames(response.aiter_lines()):
                if frame.event is None and frame.id is not None:
                    yield frame.position, frame.text
                elif frame.event == "dropped":
                    return
        except (httpx.TransportError, InfrastructureError):
            return  # reconnect, resuming after the last event
        finally:
            await response.aclose()
