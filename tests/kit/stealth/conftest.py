from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from outrigger.stealth import InMemorySubjectKeyStore, Keyring, MasterKey, Stealth

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OUTRIGGER_* variable or .env file of the machine leaks into these settings."""
    for name in list(os.environ):
        if name.startswith("OUTRIGGER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def k1() -> MasterKey:
    return MasterKey.generate("k1")


@pytest.fixture(scope="session")
def k2() -> MasterKey:
    return MasterKey.generate("k2")


@pytest.fixture
def stealth(k1: MasterKey) -> Stealth:
    return Stealth(Keyring([k1]), InMemorySubjectKeyStore())
