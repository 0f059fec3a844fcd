from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from outrigger import errors
from outrigger.resilience import CircuitBreaker, CircuitState
from tests.kit.resilience.support import Clock, sample


async def ok() -> str:
    return "ok"


async def down() -> str:
    raise errors.ExternalServiceError("event-store answered 503")


async def missing() -> str:
    raise errors.NotFound("no stream order-7")


async def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(errors.ExternalServiceError):
            await breaker.call(down)


def opened(name: str, clock: Clock, threshold: int = 3, probes: int = 1) -> CircuitBreaker:
    return CircuitBreaker(
        name, threshold, reset_timeout=10.0, half_open_max_calls=probes, clock=clock
    )


async def test_closed_until_the_threshold_of_consecutive_failures(name: str, clock: Clock) -> None:
    breaker = opened(name, clock)

    await fail(breaker, 2)
    assert await breaker.call(ok) == "ok"
    await fail(breaker, 2)

    assert breaker.state is CircuitState.CLOSED
    assert breaker.failures == 2


async def test_opens_after_the_threshold_and_refuses_without_calling(
    name: str, clock: Clock
) -> None:
    breaker = opened(name, clock)
    await fail(breaker, 3)
    assert breaker.state is CircuitState.OPEN
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    clock.advance(2.5)
    with pytest.raises(errors.CircuitOpen) as refused:
        await breaker.call(counted)

    assert calls == 0
    assert f'"{name}"' in refused.value.detail
    assert "3 consecutive failures" in refused.value.detail
    assert "in 7.5 s" in refused.value.detail
    assert "event-store answered 503" in refused.value.detail
    assert refused.value.headers["Retry-After"] == "8"
    assert sample("outrigger_resilience_rejections_total", name=name, reason="circuit_open") == 1


async def test_domain_errors_do_not_count_as_failures(name: str, clock: Clock) -> None:
    breaker = opened(name, clock)
    await fail(breaker, 2)

    for _ in range(10):
        with pytest.raises(errors.NotFound):
            await breaker.call(missing)

    assert breaker.state is CircuitState.CLOSED
    assert breaker.failures == 0


async def test_half_open_after_the_reset_timeout_and_a_good_probe_closes(
    name: str, clock: Clock
) -> None:
    breaker = opened(name, clock)
    await fail(breaker, 3)

    clock.advance(9.9)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN

    assert await breaker.call(ok) == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failures == 0


async def test_a_domain_error_from_the_probe_also_closes(name: str, clock: Clock) -> None:
    breaker = opened(name, clock)
    await fail(breaker, 3)
    clock.advance(10)

    with pytest.raises(errors.NotFound):
        await breaker.call(missing)

    assert breaker.state is CircuitState.CLOSED


async def test_a_failed_probe_reopens_for_a_full_reset_timeout(name: str, clock: Clock) -> None:
    breaker = opened(name, clock)
    await fail(breaker, 3)
    clock.advance(10)

    await fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    clock.advance(9.9)
    with pytest.raises(errors.CircuitOpen):
        await breaker.call(ok)
    clock.advance(0.1)
    assert await breaker.call(ok) == "ok"


@pytest.mark.parametrize("probes", [1, 2])
async def test_half_open_lets_exactly_the_configured_probes_through(
    name: str, clock: Clock, probes: int
) -> None:
    breaker = opened(name, clock, probes=probes)
    await fail(breaker, 3)
    clock.advance(10)
    release = asyncio.Event()
    entered = 0

    async def probe() -> str:
        nonlocal entered
        entered += 1
        await release.wait()
        return "ok"

    calls = [asyncio.create_task(breaker.call(probe)) for _ in range(10)]
    await asyncio.sleep(0)
    refused = [call for call in calls if call.done()]
    assert entered == probes
    assert len(refused) == 10 - probes
    for call in refused:
        with pytest.raises(errors.CircuitOpen, match="half-open"):
            call.result()

    release.set()
    assert await asyncio.gather(*(call for call in calls if call not in refused)) == ["ok"] * probes
    assert breaker.state is CircuitState.CLOSED


async def test_a_cancelled_probe_frees_its_place(name: str, clock: Clock) -> None:
    breaker = opened(name, clock)
    await fail(breaker, 3)
    clock.advance(10)
    hung = asyncio.create_task(breaker.call(asyncio.sleep, 60))
    await asyncio.sleep(0)

    hung.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hung

    assert breaker.state is CircuitState.HALF_OPEN
    assert await breaker.call(ok) == "ok"


@pytest.mark.parametrize("late_outcome", [ok, down])
async def test_a_late_outcome_from_before_the_circuit_opened_is_ignored(
    name: str, clock: Clock, late_outcome: Callable[[], Awaitable[str]]
) -> None:
    breaker = opened(name, clock)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return await late_outcome()

    late = asyncio.create_task(breaker.call(slow))
    await asyncio.sleep(0)
    await fail(breaker, 3)
    clock.advance(10)
    assert breaker.state is CircuitState.HALF_OPEN

    release.set()
    await asyncio.gather(late, return_exceptions=True)

    assert breaker.state is CircuitState.HALF_OPEN
    assert await breaker.call(ok) == "ok"


async def test_state_and_transitions_are_exported(name: str, clock: Clock) -> None:
    def state() -> float:
        return sample("outrigger_circuit_breaker_state", name=name)

    def entered(to: str) -> float:
        return sample("outrigger_circuit_breaker_transitions_total", name=name, to=to)

    breaker = opened(name, clock)
    assert state() == 0
    await fail(breaker, 3)
    assert (state(), entered("open")) == (2, 1)
    clock.advance(10)
    assert breaker.state is CircuitState.HALF_OPEN
    assert (state(), entered("half_open")) == (1, 1)
    await fail(breaker, 1)
    assert (state(), entered("open")) == (2, 2)
    clock.advance(10)
    await breaker.call(ok)
    assert (state(), entered("closed"), entered("half_open")) == (0, 1, 2)


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("x", failure_threshold=0)
