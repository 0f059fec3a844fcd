from __future__ import annotations

import itertools

import pytest

from tests.kit.resilience.support import Clock, Sleeps

_names = itertools.count()


@pytest.fixture
def name() -> str:
    """A fresh metric label per test, so counters start at zero."""
    return f"test-{next(_names)}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
