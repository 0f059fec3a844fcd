"""Blocking clients for scripts: `SyncEventStoreClient`, `SyncCacheClient`, `SyncAuditClient`,
`SyncNotificationsClient`, `SyncPluginsClient`.

    with SyncEventStoreClient("http://127.0.0.1:8002", token=token) as events:
        events.append("order-7", [{"type": "Placed", "data": {"total": 42}}])
        for event in events.subscribe(category="order"):
            print(event.global_position, event.type)

A blocking client owns the async client of the same service and runs it on a private event loop
in a daemon thread: each method runs the async method there and waits for its result, so the
request logic (policies, retries of idempotent appends, SSE reconnects, lock renewals) exists
once, and goes on between calls (a held lock is renewed while the caller's block runs). The
caller's context variables (trace context, request id) travel with each call. One blocking
client may be shared by threads. Interrupting a call (Ctrl-C) cancels its work on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import sys
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from outrigger.clients.audit import AuditClient
from outrigger.clients.base import ServiceClient
from outrigger.clients.cache import CacheClient
from outrigger.clients.event_store import EventStoreClient
from outrigger.clients.notifications import NotificationsClient
from outrigger.clients.plugins import PluginsClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator, Mapping
    from types import TracebackType

    import httpx

    from outrigger.resilience import Policy

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound=ServiceClient)

_EXHAUSTED: Any = object()
CANCEL_WAIT_SECONDS = 5.0


class _LoopThread:
    """An event loop running in its own daemon thread until `close`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            left = asyncio.all_tasks(self.loop)
            for task in left:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Runs `work` on the loop, in a copy of the caller's context, and waits for it. If the
        caller is interrupted, `work` is cancelled, and waited for, before the interrupt goes on."""
        if threading.current_thread() is self.thread:
            work.close()
            raise RuntimeError("a blocking client cannot be called from its own event loop")
        context = contextvars.copy_context()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        started: list[asyncio.Task[T]] = []

        def settle(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                done.cancel()
            elif (error := task.exception()) is not None:
                done.set_exception(error)
            else:
                done.set_result(task.result())

        def start() -> None:
            task = self.loop.create_task(work, context=context)
            started.append(task)
            task.add_done_callback(settle)

        def cancel() -> None:
            for task in started:  # `start` ran first: callbacks run in the order given
                task.cancel()

        try:
            self.loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed
            work.close()
            raise RuntimeError("this blocking client is closed") from None
        try:
            return done.result()
        except BaseException:
            if not done.done():
                self.loop.call_soon_threadsafe(cancel)
                concurrent.futures.wait([done], timeout=CANCEL_WAIT_SECONDS)
            raise

    def close(self) -> None:
        """Stops the loop, after cancelling what still runs on it, and waits for the thread."""
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        if threading.current_thread() is self.thread:  # garbage collected on the loop
            self.loop.stop()
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


class _BlockingClient(Generic[C]):
    """A blocking facade of one async client (see the module docstring)."""

    client_class: type[C]

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
        """The arguments of the async client (see `ServiceClient`)."""
        self._loop = _LoopThread(f"outrigger-{self.client_class.service}-client")

        async def connect() -> C:
            return self.client_class(
                base_url,
                token=token,
                policy=policy,
                timeout=timeout,
                transport=transport,
                headers=headers,
            )

        try:
            self._client = self._loop.run(connect())
        except BaseException:
            self._loop.close()
            raise
        # a client nobody closed stops its loop when it is garbage collected, or at exit
        self._stop = weakref.finalize(self, self._loop.close)

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection pool and stops the loop; the client cannot be used afterwards."""
        if not self._stop.alive:
            return
        try:
            self._loop.run(self._client.aclose())
        finally:
            self._stop()

    def _iterate(self, source: AsyncIterator[T]) -> Generator[T, None, None]:
        try:
            while (item := self._loop.run(_next(source))) is not _EXHAUSTED:
                yield item
        finally:
            # on the loop itself (garbage collected there) the loop's finalizer closes `source`
            if threading.current_thread() is not self._loop.thread:
                with contextlib.suppress(RuntimeError):  # the client was closed first
                    self._loop.run(_close(source))

    @contextlib.contextmanager
    def _hold(self, manager: contextlib.AbstractAsyncContextManager[T]) -> Iterator[T]:
        value = self._loop.run(manager.__aenter__())
        try:
            yield value
        except BaseException:
            if not self._loop.run(manager.__aexit__(*sys.exc_info())):
                raise
        else:
            self._loop.run(manager.__aexit__(None, None, None))


async def _next(source: AsyncIterator[T]) -> T:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return _EXHAUSTED  # type: ignore[no-any-return]


async def _close(source: AsyncIterator[Any]) -> None:
    if isinstance(source, AsyncGenerator):
        await source.aclose()


class _Blocking(Generic[C, P, T]):
    """`name = _Blocking(AsyncClient.name)`: the coroutine method as a blocking one."""

    def __init__(self, method: Callable[Concatenate[C, P], Coroutine[Any, Any, T]]) -> None:
        self.method = method

    @overload
    def __get__(self, facade: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, facade: _BlockingClient[C], owner: type[Any]) -> Callable[P, T]: ...
    def __get__(self, facade: _BlockingClient[C] | None, owner: type[Any]) -> Self | Callable[P, T]:
        if facade is None:
            return self
        method = self.method

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return facade._loop.run(method(facade._client, *args, **kwargs))

        return call


class _Iterating(Generic[C, P, T]):
    """`name = _Iterating(AsyncClient.name)`: the async-iterator method as an iterator; close
    it (or leave the `for` loop) to close the async one."""

    def __init__(self, method: Callable[Concatenate[C, P], AsyncIterator[T]]) -> None:
        self.method = method

    @overload
    def __get__(self, facade: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self, facade: _BlockingClient[C], owner: type[Any]
    ) -> Callable[P, Generator[T, None, None]]: ...
    def __get__(
        self, facade: _BlockingClient[C] | None, owner: type[Any]
    ) -> Self | Callable[P, Generator[T, None, None]]:
        if facade is None:
            return self
        method = self.method

        @functools.wraps(method)
        def iterate(*args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
            return facade._iterate(method(facade._client, *args, **kwargs))

        return iterate


class _Holding(Generic[C, P, T]):
    """`name = _Holding(AsyncClient.name)`: the async-context-manager method as a context
    manager; what the async one runs in the background (lock renewals) goes on meanwhile."""

    def __init__(
        self, method: Callable[Concatenate[C, P], contextlib.AbstractAsyncContextManager[T]]
    ) -> None:
        self.method = method

    @overload
    def __get__(self, facade: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self, facade: _BlockingClient[C], owner: type[Any]
    ) -> Callable[P, contextlib.AbstractContextManager[T]]: ...
    def __get__(
        self, facade: _BlockingClient[C] | None, owner: type[Any]
    ) -> Self | Callable[P, contextlib.AbstractContextManager[T]]:
        if facade is None:
            return self
        method = self.method

        @functools.wraps(method)
        def hold(*args: P.args, **kwargs: P.kwargs) -> contextlib.AbstractContextManager[T]:
            return facade._hold(method(facade._client, *args, **kwargs))

        return hold


class SyncEventStoreClient(_BlockingClient[EventStoreClient]):
    """`EventStoreClient`, blocking; `subscribe` is an iterator."""

    client_class = EventStoreClient
    append = _Blocking(EventStoreClient.append)
    read_stream = _Blocking(EventStoreClient.read_stream)
    stream_info = _Blocking(EventStoreClient.stream_info)
    set_metadata = _Blocking(EventStoreClient.set_metadata)
    delete = _Blocking(EventStoreClient.delete)
    read_log = _Blocking(EventStoreClient.read_log)
    save_snapshot = _Blocking(EventStoreClient.save_snapshot)
    load_snapshot = _Blocking(EventStoreClient.load_snapshot)
    forget_subject = _Blocking(EventStoreClient.forget_subject)
    subscribe = _Iterating(EventStoreClient.subscribe)


class SyncCacheClient(_BlockingClient[CacheClient]):
    """`CacheClient`, blocking; `lock` is a context manager, renewed in the background."""

    client_class = CacheClient
    get = _Blocking(CacheClient.get)
    lookup = _Blocking(CacheClient.lookup)
    put = _Blocking(CacheClient.put)
    delete = _Blocking(CacheClient.delete)
    mget = _Blocking(CacheClient.mget)
    mset = _Blocking(CacheClient.mset)
    invalidate = _Blocking(CacheClient.invalidate)
    acquire = _Blocking(CacheClient.acquire)
    renew = _Blocking(CacheClient.renew)
    release = _Blocking(CacheClient.release)
    validate_fence = _Blocking(CacheClient.validate_fence)
    lock = _Holding(CacheClient.lock)


class SyncAuditClient(_BlockingClient[AuditClient]):
    """`AuditClient`, blocking; `query_all`, `follow`, `export` and `export_ndjson` are
    iterators."""

    client_class = AuditClient
    record = _Blocking(AuditClient.record)
    record_many = _Blocking(AuditClient.record_many)
    query = _Blocking(AuditClient.query)
    get = _Blocking(AuditClient.get)
    reveal = _Blocking(AuditClient.reveal)
    forget = _Blocking(AuditClient.forget)
    inclusion_proof = _Blocking(AuditClient.inclusion_proof)
    consistency_proof = _Blocking(AuditClient.consistency_proof)
    latest_checkpoint = _Blocking(AuditClient.latest_checkpoint)
    issue_checkpoint = _Blocking(AuditClient.issue_checkpoint)
    verify = _Blocking(AuditClient.verify)
    query_all = _Iterating(AuditClient.query_all)
    follow = _Iterating(AuditClient.follow)
    export = _Iterating(AuditClient.export)
    export_ndjson = _Iterating(AuditClient.export_ndjson)


class SyncNotificationsClient(_BlockingClient[NotificationsClient]):
    """`NotificationsClient`, blocking; `subscribe` is an iterator (it reconnects by itself)."""

    client_class = NotificationsClient
    publish = _Blocking(NotificationsClient.publish)
    channel = _Blocking(NotificationsClient.channel)
    subscribe = _Iterating(NotificationsClient.subscribe)


class SyncPluginsClient(_BlockingClient[PluginsClient]):
    """`PluginsClient`, blocking; `wait` blocks until the job is done (Ctrl-C stops waiting)."""

    client_class = PluginsClient
    plugins = _Blocking(PluginsClient.plugins)
    reload = _Blocking(PluginsClient.reload)
    run = _Blocking(PluginsClient.run)
    submit = _Blocking(PluginsClient.submit)
    job = _Blocking(PluginsClient.job)
    wait = _Blocking(PluginsClient.wait)
