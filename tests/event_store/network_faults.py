"""Transports that fail the way networks do, for the client tests: each passes requests to the
real server, then loses an answer or cuts a stream where the test says."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


class LoseFirstResponse(httpx.AsyncBaseTransport):
    """Delivers requests, but the first response to a `lose` request never comes back."""

    def __init__(self, lose: Callable[[httpx.Request], bool]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lose = lose
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.lost == 0 and self.lose(request):
            self.lost += 1
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class CutFirstSubscription(httpx.AsyncBaseTransport):
    """The network drops the first subscription right after its first event."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.subscriptions: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/subscribe"):
            return response
        self.subscriptions.append(request)
        if len(self.subscriptions) > 1:
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CutAfterFirstEvent(response),
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CutAfterFirstEvent(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = b""
        async for chunk in self.response.aiter_raw():
            received += chunk
            start = received.find(b"id: ")
            end = received.find(b"\n\n", start)
            if start >= 0 and end >= 0:
                yield received[: end + 2]
                raise httpx.ReadError("connection reset by peer")
            if start < 0:
                yield received
                received = b""

    async def aclose(self) -> None:
        await self.response.aclose()
