from __future__ import annotations

import asyncio

import pytest

from outrigger import errors
from outrigger.resilience import (
    Bulkhead,
    BulkheadFull,
    CircuitBreaker,
    CircuitState,
    Policy,
    PolicyDefaults,
    PolicyRegistry,
    Retry,
    Timeout,
    policy,
)
from tests.kit.resilience.support import Clock, Sleeps, sample


class Dependency:
    """Answers with the scripted outcomes in order: an exception is raised, "slow" hangs."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self, value: str = "ok") -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else value
        if isinstance(outcome, Exception):
            raise outcome
        if outcome == "slow":
            await asyncio.sleep(60)
        return str(outcome)


async def test_a_bare_policy_just_calls() -> None:
    dependency = Dependency()

    assert await Policy("bare").call(dependency, "hello") == "hello"


async def test_the_breaker_sees_every_attempt_and_its_opening_stops_the_retry(
    name: str, clock: Clock, sleeps: Sleeps
) -> None:
    breaker = CircuitBreaker(name, failure_threshold=2, reset_timeout=5, clock=clock)
    dependency = Dependency(*[errors.ExternalServiceError("503")] * 10)
    guarded = Policy(name, retry=Retry(attempts=5, sleep=sleeps), breaker=breaker)

    with pytest.raises(errors.CircuitOpen, match="2 consecutive failures"):
        await guarded.call(dependency)

    assert dependency.calls == 2
    assert len(sleeps.delays) == 2
    assert breaker.state is CircuitState.OPEN


async def test_a_half_open_probe_is_a_single_attempt(
    name: str, clock: Clock, sleeps: Sleeps
) -> None:
    breaker = CircuitBreaker(name, failure_threshold=1, reset_timeout=5, clock=clock)
    dependency = Dependency(*[errors.ExternalServiceError("503")] * 10)
    guarded = Policy(name, retry=Retry(attempts=5, sleep=sleeps), breaker=breaker)
    with pytest.raises(errors.CircuitOpen):
        await guarded.call(dependency)
    clock.advance(5)

    with pytest.raises(errors.CircuitOpen):
        await guarded.call(dependency)

    assert dependency.calls == 2


async def test_the_timeout_applies_to_each_attempt_which_is_retried(
    name: str, sleeps: Sleeps
) -> None:
    dependency = Dependency("slow", "fast")
    guarded = Policy(name, timeout=Timeout(0.01), retry=Retry(attempts=2, sleep=sleeps))

    assert await guarded.call(dependency) == "fast"

    assert sample("outrigger_resilience_rejections_total", name=name, reason="timeout") == 1
    assert sample("outrigger_resilience_retries_total", name=name) == 1


async def test_timeouts_count_as_breaker_failures(name: str, clock: Clock) -> None:
    breaker = CircuitBreaker(name, failure_threshold=1, clock=clock)
    guarded = Policy(name, timeout=Timeout(0.01), breaker=breaker)

    with pytest.raises(errors.Timeout):
        await guarded.call(Dependency("slow"))

    assert breaker.state is CircuitState.OPEN


async def test_a_call_holds_its_bulkhead_slot_through_its_retries(
    name: str, sleeps: Sleeps
) -> None:
    bulkhead = Bulkhead(name, max_concurrent=1)
    gate = asyncio.Event()

    async def stalled_sleep(seconds: float) -> None:
        await gate.wait()

    guarded = Policy(name, retry=Retry(attempts=2, sleep=stalled_sleep), bulkhead=bulkhead)
    first = asyncio.create_task(guarded.call(Dependency(errors.CacheError("down"))))
    await asyncio.sleep(0)
    other = Dependency()

    with pytest.raises(BulkheadFull):
        await guarded.call(other)

    assert other.calls == 0
    gate.set()
    assert await first == "ok"


async def test_retry_if_narrows_the_retry_for_one_call(name: str, sleeps: Sleeps) -> None:
    dependency = Dependency(errors.ExternalServiceError("503"))
    guarded = Policy(name, retry=Retry(attempts=3, sleep=sleeps))

    with pytest.raises(errors.ExternalServiceError):
        await guarded.call(dependency, retry_if=lambda exc: False)

    assert dependency.calls == 1


def test_the_registry_returns_one_policy_per_name() -> None:
    registry = PolicyRegistry()

    event_store = registry.get("event-store")

    assert registry.get("event-store") is event_store
    assert registry.get("cache") is not event_store
    assert event_store.breaker is not None
    assert event_store.breaker.name == "event-store"
    assert policy("registry-test") is policy("registry-test")


def test_defaults_and_single_policies_can_be_overridden() -> None:
    registry = PolicyRegistry(PolicyDefaults(timeout=2.0, attempts=5, max_concurrent=10))

    built = registry.get("audit")
    assert built.timeout == Timeout(2.0)
    assert built.retry is not None
    assert built.retry.attempts == 5
    assert built.bulkhead is not None
    assert built.bulkhead.max_concurrent == 10

    replacement = registry.register(Policy("audit", retry=Retry(attempts=1)))
    assert registry.get("audit") is replacement
    assert "audit" in registry
    assert "Policy('audit', retry=Retry(attempts=1" in repr(replacement)
