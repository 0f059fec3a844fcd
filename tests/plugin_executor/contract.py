"""The `Sandbox` contract, written once (`services/plugin_executor/domain/port.py`'s docstrings)
and run against each way the pool runs plugins: warm (a child forked from a warm worker) and cold
(a fresh worker per run). A subclass sets `mode`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from outrigger.testing import ContractSuite, unique
from services.plugin_executor.adapters.pool import WorkerPool
from services.plugin_executor.domain.errors import SandboxUnavailable
from services.plugin_executor.domain.models import Progress, Reason
from tests.plugin_executor.sandbox_support import (
    files_of,
    on_host,
    plugin,
    run_processes,
    run_uids,
    uid_base,
    work_root,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class SandboxContract(ContractSuite[WorkerPool]):
    mode: ClassVar[str]

    @pytest.fixture(autouse=True)
    def _work_root(self) -> Iterator[None]:
        with work_root() as root:
            self.root: Path = root
            yield

    async def make_adapter(self, **options: Any) -> WorkerPool:
        options.setdefault("uid_base", uid_base())
        pool = WorkerPool(
            work_dir=self.root / f"pool-{options['uid_base']}", mode=self.mode, **options
        )
        await pool.start()
        return pool

    async def close_adapter(self, adapter: WorkerPool) -> None:
        await adapter.close()
        assert await run_processes(adapter) == []
        assert files_of(run_uids(adapter)) == []

    async def test_a_run_answers_its_result_and_usage(self, adapter: WorkerPool) -> None:
        echo = plugin("contract", "echo")
        outcome = await adapter.run(echo, {"text": "héllo", "n": [1, 2]}, echo.limits)
        assert outcome.reason is Reason.OK
        assert outcome.result == {"echo": {"text": "héllo", "n": [1, 2]}}
        assert outcome.detail is None
        assert outcome.usage.cpu_s > 0
        assert outcome.usage.max_rss_kib > 0
        assert 0 < outcome.usage.wall_s < echo.limits.wall_seconds

    async def test_progress_reports_come_in_order_before_the_outcome(
        self, adapter: WorkerPool
    ) -> None:
        steps = plugin("contract", "progress")
        seen: list[Progress] = []
        outcome = await adapter.run(
            steps, {"steps": ["a", "b", "c", "d"]}, steps.limits, seen.append
        )
        assert outcome.reason is Reason.OK
        assert outcome.result == {"steps": 4}
        assert seen == [
            Progress(0.25, "a"),
            Progress(0.5, "b"),
            Progress(0.75, "c"),
            Progress(1, "d"),
        ]

    async def test_an_exception_is_an_error_with_its_message_and_no_host_path(
        self, adapter: WorkerPool
    ) -> None:
        failing = plugin("contract", "fail")
        outcome = await adapter.run(failing, {}, failing.limits)
        assert outcome.reason is Reason.ERROR
        assert outcome.result is None
        assert outcome.detail is not None
        assert outcome.detail.startswith("ValueError: no good: ran in ")
        assert str(self.root) not in outcome.detail
        assert str(failing.folder) not in outcome.detail

    @pytest.mark.parametrize("function", ["a_list", "a_set"])
    async def test_an_answer_that_is_not_a_json_object_is_invalid_output(
        self, adapter: WorkerPool, function: str
    ) -> None:
        wrong = plugin("contract", function)
        outcome = await adapter.run(wrong, {}, wrong.limits)
        assert (outcome.reason, outcome.result) == (Reason.INVALID_OUTPUT, None)
        assert outcome.detail

    async def test_a_run_leaves_nothing_for_the_next(self, new_adapter: Any) -> None:
        pool = await new_adapter(size=1)  # warm: the same worker takes both runs
        name = unique("left-behind-")
        leave, find = plugin("contract", "leave_traces"), plugin("contract", "find_traces")
        left = await pool.run(leave, {"name": name}, leave.limits)
        assert left.reason is Reason.OK
        seen = await pool.run(find, {"name": name}, find.limits)
        assert seen.reason is Reason.OK
        assert seen.result == {"work": [], "tmp": False, "shm": False, "global": [], "module": None}
        assert on_host(name) == {"/tmp": False, "/dev/shm": False}

    async def test_runs_of_one_plugin_each_start_clean(self, new_adapter: Any) -> None:
        pool = await new_adapter(size=1)  # warm: the second run takes the child kept ready
        leave = plugin("contract", "leave_traces")
        for _ in range(2):
            left = await pool.run(leave, {"name": unique("left-behind-")}, leave.limits)
            assert left.reason is Reason.OK
            assert left.result is not None
            assert left.result["found"] == {"work": [], "global": []}

    async def test_runs_go_on_at_once_and_queue_beyond_the_workers(
        self, adapter: WorkerPool
    ) -> None:
        echo = plugin("contract", "echo")
        outcomes = await asyncio.gather(
            *(adapter.run(echo, {"n": n}, echo.limits) for n in range(7))
        )
        assert [(o.reason, o.result) for o in outcomes] == [
            (Reason.OK, {"echo": {"n": n}}) for n in range(7)
        ]

    async def test_runs_beyond_the_queue_are_refused(self, new_adapter: Any) -> None:
        pool = await new_adapter(size=1, queue_size=1)
        wait = plugin("contract", "wait")
        started = asyncio.Event()
        running = asyncio.create_task(pool.run(wait, {}, wait.limits, lambda _: started.set()))
        await started.wait()
        queued = asyncio.create_task(pool.run(plugin("contract", "echo"), {}, wait.limits))
        await asyncio.sleep(0)
        with pytest.raises(SandboxUnavailable, match="busy"):
            await pool.run(plugin("contract", "echo"), {}, wait.limits)
        running.cancel()
        assert (await queued).reason is Reason.OK
        with pytest.raises(asyncio.CancelledError):
            await running

    async def test_closing_kills_a_run_past_the_grace_and_refuses_new_ones(
        self, new_adapter: Any
    ) -> None:
        pool = await new_adapter(grace_seconds=0.1)
        wait = plugin("contract", "wait")
        started = asyncio.Event()
        running = asyncio.create_task(pool.run(wait, {}, wait.limits, lambda _: started.set()))
        await started.wait()
        await pool.close()
        outcome = await running
        assert outcome.reason is Reason.KILLED
        with pytest.raises(SandboxUnavailable):
            await pool.run(wait, {}, wait.limits)

    async def test_a_worker_killed_from_outside_is_replaced(self, new_adapter: Any) -> None:
        pool = await new_adapter(size=1)
        wait, echo = plugin("contract", "wait"), plugin("contract", "echo")
        started = asyncio.Event()
        running = asyncio.create_task(pool.run(wait, {}, wait.limits, lambda _: started.set()))
        await started.wait()
        [worker] = pool.worker_pids
        os.kill(worker, signal.SIGKILL)
        outcome = await running
        assert outcome.reason is Reason.KILLED
        outcomes = [await pool.run(echo, {"n": n}, echo.limits) for n in range(3)]
        assert [o.reason for o in outcomes] == [Reason.OK] * 3
        assert worker not in pool.worker_pids
        assert await run_processes(pool) == []  # the run died with its worker

    async def test_a_run_whose_caller_goes_away_is_killed_and_its_worker_goes_on(
        self, new_adapter: Any
    ) -> None:
        pool = await new_adapter(size=1)
        wait, echo = plugin("contract", "wait"), plugin("contract", "echo")
        started = asyncio.Event()
        running = asyncio.create_task(pool.run(wait, {}, wait.limits, lambda _: started.set()))
        await started.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        outcome = await pool.run(echo, {"after": True}, echo.limits)
        assert (outcome.reason, outcome.result) == (Reason.OK, {"echo": {"after": True}})
        assert await run_processes(pool) == []

    async def test_loading_plugins_restarts_the_workers_in_turn(self, new_adapter: Any) -> None:
        pool = await new_adapter()
        echo, steps = plugin("contract", "echo"), plugin("contract", "progress")
        before = set(pool.worker_pids)
        pool.load([echo, steps])
        outcomes = [await pool.run(echo, {"n": n}, echo.limits) for n in range(5)]
        assert [o.reason for o in outcomes] == [Reason.OK] * 5

        def restarted() -> bool:  # warm: every worker new; cold: there is none to restart
            pids = set(pool.worker_pids)
            return self.mode == "cold" or (len(pids) == pool.size and not before & pids)

        for _ in range(100):  # the restarts go on in the background, one worker at a time
            if restarted():
                break
            await asyncio.sleep(0.05)
        assert restarted()
        outcome = await pool.run(steps, {"steps": ["x"]}, steps.limits)
        assert (outcome.reason, outcome.result) == (Reason.OK, {"steps": 1}), outcome

    async def test_large_payloads_and_results_come_whole_and_output_past_the_limit_is_cut(
        self, adapter: WorkerPool
    ) -> None:
        big = plugin("contract", "big", output_kib=4096)
        whole = await adapter.run(big, {"size": 3 << 20}, big.limits)
        assert whole.reason is Reason.OK
        assert whole.result == {"text": "x" * (3 << 20)}
        echo = plugin("contract", "echo", output_kib=4096)
        payload = {"text": "é" * (1 << 20)}
        echoed = await adapter.run(echo, payload, echo.limits)
        assert echoed.result == {"echo": payload}
        small = plugin("contract", "big", output_kib=4)
        cut = await adapter.run(small, {"size": 5000}, small.limits)
        assert (cut.reason, cut.result) == (Reason.OUTPUT_LIMIT, None)
        assert cut.detail == "the output went past 4 KiB and was cut"
