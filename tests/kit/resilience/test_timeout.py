from __future__ import annotations

import asyncio

import pytest

from outrigger import errors
from outrigger.resilience import Timeout
from tests.kit.resilience.support import sample


async def test_a_call_past_its_deadline_is_cancelled_and_raises_timeout(name: str) -> None:
    cancelled = False

    async def hangs() -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled = True
            raise

    with pytest.raises(errors.Timeout, match=rf"{name}: no answer within 0.01 s"):
        await Timeout(0.01).call(hangs, name=name)

    assert cancelled
    assert sample("outrigger_resilience_rejections_total", name=name, reason="timeout") == 1


async def test_a_call_within_its_deadline_returns_its_result() -> None:
    async def double(value: int) -> int:
        return value * 2

    assert await Timeout(1.0).call(double, 21) == 42


async def test_a_timeout_raised_by_the_call_itself_passes_unchanged(name: str) -> None:
    async def gives_up() -> None:
        raise TimeoutError("the driver gave up")

    with pytest.raises(TimeoutError, match="the driver gave up") as raised:
        await Timeout(1.0).call(gives_up, name=name)

    assert not isinstance(raised.value, errors.Timeout)
    assert sample("outrigger_resilience_rejections_total", name=name, reason="timeout") == 0


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Timeout(0)
