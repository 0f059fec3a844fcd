from __future__ import annotations

import pytest

from outrigger import errors
from outrigger.resilience import Retry, is_transient
from tests.kit.resilience.support import Sleeps, sample


class Flaky:
    """Fails with `failure` the first `failures` times, then answers "ok"."""

    def __init__(self, failures: int, failure: Exception) -> None:
        self.failures = failures
        self.failure = failure
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.failure
        return "ok"


async def test_transient_failures_are_retried_until_success(name: str, sleeps: Sleeps) -> None:
    flaky = Flaky(2, errors.DatabaseError("database unavailable"))
    retry = Retry(attempts=3, base_delay=0.1, max_delay=1.0, sleep=sleeps)

    assert await retry.call(flaky, name=name) == "ok"

    assert flaky.calls == 3
    assert len(sleeps.delays) == 2
    assert sample("outrigger_resilience_retries_total", name=name) == 2


async def test_the_last_failure_is_raised_when_attempts_run_out(sleeps: Sleeps) -> None:
    flaky = Flaky(5, errors.ExternalServiceError("upstream failed"))

    with pytest.raises(errors.ExternalServiceError, match="upstream failed"):
        await Retry(attempts=3, sleep=sleeps).call(flaky)

    assert flaky.calls == 3
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize(
    "failure",
    [
        errors.NotFound("no stream order-7"),
        errors.Conflict("expected_version 4 but stream is at 6"),
        errors.InvalidInput("name: required"),
        errors.RateLimited("slow down"),
        errors.CircuitOpen('circuit "x" is open'),
        ValueError("a bug"),
    ],
)
async def test_non_retryable_failures_are_raised_at_once(
    name: str, sleeps: Sleeps, failure: Exception
) -> None:
    flaky = Flaky(1, failure)

    with pytest.raises(type(failure)):
        await Retry(attempts=5, sleep=sleeps).call(flaky, name=name)

    assert flaky.calls == 1
    assert sleeps.delays == []
    assert sample("outrigger_resilience_retries_total", name=name) == 0


@pytest.mark.parametrize(
    "failure",
    [
        TimeoutError(),
        ConnectionRefusedError(),
        errors.Timeout("slow"),
        errors.CacheError("x"),
    ],
)
async def test_timeouts_and_dropped_connections_are_transient(
    sleeps: Sleeps, failure: Exception
) -> None:
    assert is_transient(failure)
    assert await Retry(attempts=2, sleep=sleeps).call(Flaky(1, failure)) == "ok"


async def test_retry_if_narrows_what_this_call_retries(sleeps: Sleeps) -> None:
    flaky = Flaky(1, errors.ExternalServiceError("503"))

    with pytest.raises(errors.ExternalServiceError):
        await Retry(attempts=3, sleep=sleeps).call(flaky, retry_if=lambda exc: False)

    assert flaky.calls == 1


async def test_backoff_doubles_up_to_the_cap_without_jitter(sleeps: Sleeps) -> None:
    retry = Retry(attempts=6, base_delay=0.1, max_delay=0.5, jitter="none", sleep=sleeps)

    with pytest.raises(errors.StorageError):
        await retry.call(Flaky(10, errors.StorageError("down")))

    assert sleeps.delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


async def test_full_jitter_draws_between_zero_and_the_cap(sleeps: Sleeps) -> None:
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return high / 2

    retry = Retry(attempts=5, base_delay=0.1, max_delay=0.3, sleep=sleeps, uniform=uniform)
    with pytest.raises(errors.StorageError):
        await retry.call(Flaky(10, errors.StorageError("down")))

    assert [low for low, _ in drawn] == [0, 0, 0, 0]
    assert [high for _, high in drawn] == pytest.approx([0.1, 0.2, 0.3, 0.3])
    assert sleeps.delays == pytest.approx([0.05, 0.1, 0.15, 0.15])


def test_random_jitter_stays_within_bounds() -> None:
    retry = Retry(attempts=100, base_delay=0.01, max_delay=0.2)
    for failures in range(1, 100):
        for _ in range(20):
            assert 0 <= retry.delay(failures) <= retry.cap(failures) <= 0.2
    assert retry.cap(1000) == 0.2


@pytest.mark.parametrize(
    "arguments",
    [{"attempts": 0}, {"base_delay": -1.0}, {"base_delay": 2.0, "max_delay": 1.0}],
)
def test_nonsense_settings_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        Retry(**arguments)  # type: ignore[arg-type]
