"""The `Sandbox` contract against the worker pool, warm and cold."""

from __future__ import annotations

from tests.plugin_executor.contract import SandboxContract


class TestWarm(SandboxContract):
    mode = "warm"


class TestCold(SandboxContract):
    mode = "cold"
