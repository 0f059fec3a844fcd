"""A test double of the `Sandbox` port, for the API tests only: `InProcessSandbox` runs a
plugin's function in this process, in a worker thread, and confines NOTHING.

It lets the API tests prove the service's side of a run (input and output schemas, reasons,
usage, metrics, audit records, 503) quickly and without the pool. It is never shipped and never
a substitute for the real adapter, which the port's contract and abuse suites hold to account.
A plugin's module is imported from its folder under a name of its own (by digest), so two
versions of one plugin do not share a module.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

from services.plugin_executor.domain import (
    Feature,
    Features,
    Outcome,
    Progress,
    Reason,
    SandboxUnavailable,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

    from services.plugin_executor.domain import Limits, Plugin

NOT_CONFINED = "the in-process test double confines nothing"


class InProcessSandbox:
    """`Sandbox` for tests: every run in a thread of this process. `available = False` makes
    runs raise `SandboxUnavailable` (a full or stopped pool); `refuse_start` makes `start`
    raise it (a host without a required layer)."""

    def __init__(self, *, refuse_start: str | None = None) -> None:
        self.refuse_start = refuse_start
        self.available = True
        self.started = False
        self.closed = False
        self.loaded: list[Plugin] = []
        self.runs: list[tuple[str, dict[str, Any], Limits]] = []
        self.reported: list[Progress] = []

    async def start(self) -> None:
        if self.refuse_start is not None:
            raise SandboxUnavailable(self.refuse_start)
        self.started = True

    async def close(self) -> None:
        self.closed = True

    def features(self) -> Features:
        active = frozenset({Feature.RLIMITS, Feature.SESSION})
        return Features(active, {f: NOT_CONFINED for f in Feature if f not in active})

    def load(self, plugins: Sequence[Plugin]) -> None:
        self.loaded = list(plugins)

    async def run(
        self,
        plugin: Plugin,
        payload: dict[str, Any],
        limits: Limits,
        progress: Callable[[Progress], None] | None = None,
    ) -> Outcome:
        if not self.available:
            raise SandboxUnavailable("the test double's pool is unavailable")
        self.runs.append((str(plugin.id), payload, limits))
        started = time.perf_counter()
        try:
            result, reports, cpu = await asyncio.to_thread(_call, plugin, payload)
        except Exception as exc:
            usage = Usage(0.0, _max_rss_kib(), time.perf_counter() - started)
            return Outcome(Reason.ERROR, usage, detail=f"{type(exc).__name__}: {exc}")
        usage = Usage(cpu, _max_rss_kib(), time.perf_counter() - started)
        for report in reports:
            self.reported.append(report)
            if progress is not None:
                progress(report)
        if not isinstance(result, dict):
            return Outcome(Reason.INVALID_OUTPUT, usage, detail="the result is not a JSON object")
        return Outcome(Reason.OK, usage, result=result)


def _call(plugin: Plugin, payload: dict[str, Any]) -> tuple[Any, list[Progress], float]:
    started = time.thread_time()
    function = getattr(_module(plugin), plugin.function)
    answer = function(payload)
    reports = []
    if inspect.isgenerator(answer):
        while True:
            try:
                report = next(answer)
            except StopIteration as stop:
                answer = stop.value
                break
            reports.append(Progress(float(report["progress"]), report.get("message")))
    return answer, reports, time.thread_time() - started


def _module(plugin: Plugin) -> ModuleType:
    name = f"fake_sandbox_{plugin.id.digest[:16]}_{plugin.module.replace('.', '_')}"
    if name in sys.modules:
        return sys.modules[name]
    path = plugin.folder / (plugin.module.replace(".", "/") + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _max_rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
