"""Plugin runs: the plugin executor over HTTP and as jobs, warm and cold, beside a new
`python3 -I -S` per job (how Piston and snekbox run), and what the sandbox's layers cost.

In one run, for the trivial plugin `bench/plugins/noop` (it answers `{"n": …}`), in rounds:

- `http warm`, `http cold`: `outrigger serve plugin-executor` as shipped (1 uvicorn worker,
  uvloop, a JWT verified per request, the JSON access log, an audit record per run published to
  the real RabbitMQ with confirms), `OUTRIGGER_PLUGINS_MODE=warm` (each run forked from a warm
  worker) or `cold` (a fresh worker per run), the pool as large as the machine has cores
  (`--pool-size`); `wrk --latency` posting `{"n": 1}` to `POST /v1/plugins/noop/run` with 1 and
  16 connections. Only one service runs at a time: the rounds start and stop them in turn.
- `jobs warm`, `jobs cold`: the same service, sent jobs through RabbitMQ: a CloudEvent (binary
  mode, id = job id, data `{"input": {"n": 1}}`, persistent, confirmed) on the jobs exchange,
  routing key `run.noop`, with `reply_to` (this script's exclusive, auto-deleted reply queue)
  and `correlation_id`; a job's time runs from the publish to its reply (`reason: ok`). 1 and
  16 callers, each sending its next job once its reply came. The service's jobs exchange,
  queue and notifications exchange are throwaway ones of this run (`outrigger.jobs` as
  `bench.jobs.<run>`, …; `OUTRIGGER_PLUGINS_JOBS_EXCHANGE` and its kin), so no other consumer
  of the shared broker takes or sees them; they are deleted at the end. A service without a
  jobs consumer (no exchange, no queue bound, no reply within `--jobs-timeout`) is reported
  as "jobs: not available".
- `subprocess`: the peer baseline, one new `python3 -I -S` per job (the interpreter the workers
  use) that imports the plugin's module, calls the same function on the input read from its
  stdin and writes the result; 1 and 16 at once, from an asyncio loop in a lean process of its
  own (`_peer.py`).
- `pool, all layers` / `pool, no layers`: the sandbox's pool in this process (no HTTP), with
  every layer the host offers and with every layer disabled (the fork, the pipes, the work
  directory and the sweep stay): the overhead of the layers per run is the difference of the
  p50s at 1 caller. At 16 callers the pool alone is the ceiling for the HTTP figures.
- with `--baseline DIR`, `http warm@DIR`: the warm service of another copy of the repository
  (say `git archive <commit> | tar -x -C /tmp/plugins-<commit>`), served the same way: before
  and after, in one run.

`server CPU` is the service's CPU time (its process, its workers, the runs they reaped) over the
cell, per run; for the pool cells, the median of the runs' own CPU (each run's process, its
confinement included). Each figure is the median of the rounds; `worst p99` is the highest
p99 of any round; ratios are taken round by round and their median printed. Targets (issue
13): warm over HTTP >= 300 runs/s; >= 10x the subprocess baseline at the same concurrency
(runs/s); the layers' overhead <= 5 ms per run. Every cell is bounded in time (`--duration`, plus
`--jobs-timeout` for the replies still awaited) and the closed-loop ones in count (100,000
calls); only 127.0.0.1 is loaded. The code measured is this checkout's, whatever the
virtualenv's editable install points at. The script stops
what it started (by PID) and removes its folders; the jobs it sends expire after a minute.

    .venv/bin/python bench/plugins.py                           # 3 rounds x 5 s per cell
    .venv/bin/python bench/plugins.py --rounds 5 --duration 10
    .venv/bin/python bench/plugins.py --rounds 1 --duration 3  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _httpload import ROOT, Figures, free_port, line, median, process, wrk
from _peer import INPUT, closed_loop

# This checkout's code is measured, whatever the virtualenv's editable install points at.
sys.path.insert(0, str(ROOT))

import aio_pika
import orjson

from outrigger.auth import TokenIssuer
from outrigger.bus import CloudEvent
from outrigger.bus.cloudevents import encode_headers
from outrigger.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from services.plugin_executor.adapters.pool import WorkerPool
    from services.plugin_executor.domain import Plugin

PYTHON = sys.executable
PLUGINS = ROOT / "bench" / "plugins"
PLUGIN = "noop"
CLIENTS = (1, 16)
JOB_TYPE = "dev.outrigger.plugins.job.run"
JOB_EXPIRY_SECONDS = 60
WARM_UP_SECONDS = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Runs' uids: away from the default (64000) and the test suite's (61000-61999 for one process).
UID_BASE = {"warm": 69000, "cold": 69100, "all": 69200, "none": 69300, "baseline": 69400}
POST = (
    'wrk.method = "POST"\nwrk.body = \'{"n": 1}\'\n'
    'wrk.headers["Content-Type"] = "application/json"\n'
)


@dataclass(frozen=True)
class Cell:
    """One measurement: its figures, and the server's CPU per run (0 when not measured)."""

    figures: Figures
    cpu_ms: float = 0.0


@dataclass
class Results:
    cells: dict[str, list[Cell]]
    jobs_unavailable: dict[str, str]

    def add(self, name: str, cell: Cell) -> None:
        self.cells.setdefault(name, []).append(cell)
        cpu = f"  server CPU {cell.cpu_ms:5.2f} ms/run" if cell.cpu_ms else ""
        print(line(name, cell.figures, "runs/s") + cpu, flush=True)


# --- the service -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    mode: str
    base: str
    pid: int


@contextlib.contextmanager
def serve(
    mode: str, args: argparse.Namespace, workdir: Path, checkout: Path = ROOT
) -> Iterator[Service]:
    """The service of `checkout` (this one, or `--baseline`'s) in `mode`, ready."""
    workdir.mkdir(mode=0o711, exist_ok=True)
    port = free_port()
    log = workdir / f"plugin-executor-{mode}-{port}.log"
    env = {
        "PYTHONPATH": str(checkout),
        "OUTRIGGER_PORT": str(port),
        "OUTRIGGER_JWT_SECRET": args.jwt_secret,
        "OUTRIGGER_AMQP_URL": args.amqp_url,
        "OUTRIGGER_DATA_DIR": str(workdir / f"data-{mode}"),
        "OUTRIGGER_PLUGIN_DIR": str(PLUGINS),
        "OUTRIGGER_PLUGINS_MODE": mode,
        "OUTRIGGER_PLUGINS_POOL_SIZE": str(args.pool_size),
        "OUTRIGGER_PLUGINS_WORK_DIR": str(workdir / f"work-{mode}"),
        "OUTRIGGER_PLUGINS_JOB_UID_BASE": str(UID_BASE[mode if checkout == ROOT else "baseline"]),
        "OUTRIGGER_PLUGINS_JOBS_EXCHANGE": args.jobs.exchange,
        "OUTRIGGER_PLUGINS_JOBS_QUEUE": args.jobs.queue,
        "OUTRIGGER_PLUGINS_NOTIFICATIONS_EXCHANGE": args.jobs.notifications,
    }
    outrigger = str(Path(PYTHON).parent / "outrigger")
    with process([outrigger, "serve", "plugin-executor"], env, log, cwd=checkout) as child:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", child.poll, log)
        yield Service(mode, base, child.pid)


def wait_ready(url: str, exited: Callable[[], int | None], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited() is not None:
            raise RuntimeError(f"the service exited; its log ends:\n{tail(log)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {timeout:g} s; the log ends:\n{tail(log)}")


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def check_run(service: Service, token: str) -> None:
    """One run over HTTP, checked: the cells after it count answers, not their contents."""
    request = urllib.request.Request(
        f"{service.base}/v1/plugins/{PLUGIN}/run",
        data=orjson.dumps(INPUT),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = orjson.loads(answer.read())
    if body.get("reason") != "ok" or body.get("result") != INPUT:
        raise RuntimeError(f"the {service.mode} service answered {body}")


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its descendants, with the children each of them reaped."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat.rpartition(")")[2].split()
            total += sum(int(value) for value in fields[11:15]) / CLK_TCK
            children = Path(f"/proc/{current}/task/{current}/children").read_text()
            pending += [int(child) for child in children.split()]
    return total


def http_cell(service: Service, token: str, clients: int, duration: int, script: Path) -> Cell:
    before = tree_cpu(service.pid)
    figures = wrk(
        f"{service.base}/v1/plugins/{PLUGIN}/run",
        connections=clients,
        duration=duration,
        threads=1,
        headers=[f"Authorization: Bearer {token}"],
        script=script,
        label=f"http {service.mode} c{clients}",
    )
    runs = figures.rps * duration
    return Cell(figures, (tree_cpu(service.pid) - before) / runs * 1000 if runs else 0.0)


# --- jobs through RabbitMQ -----------------------------------------------------------------------


@dataclass(frozen=True)
class JobsTopology:
    """The throwaway names the service's jobs use in this run."""

    exchange: str
    queue: str
    notifications: str

    @classmethod
    def new(cls) -> JobsTopology:
        run = secrets.token_hex(4)
        return cls(f"bench.jobs.{run}", f"bench.plugin-jobs.{run}", f"bench.notifications.{run}")

    async def delete(self, connection: aio_pika.abc.AbstractConnection) -> None:
        """Whatever of it the services declared (the kit's delay queues included)."""
        queues = [self.queue, f"{self.queue}.dlq"]
        queues += [f"{self.queue}.retry.{n}" for n in range(1, 11)]
        for kind, name in [("queue", q) for q in queues] + [
            ("exchange", self.exchange),
            ("exchange", self.notifications),
        ]:
            channel = await connection.channel()
            try:
                if kind == "queue":
                    await channel.queue_delete(name)
                else:
                    await channel.exchange_delete(name)
            except aio_pika.exceptions.ChannelClosed:
                continue  # never declared
            await channel.close()


class JobsClient:
    """Sends jobs on the jobs exchange and matches their replies by correlation id."""

    def __init__(self, connection: aio_pika.abc.AbstractConnection, exchange: str) -> None:
        self.connection = connection
        self.exchange_name = exchange
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reply_queue = ""
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None

    @classmethod
    async def open(cls, url: str, exchange: str) -> JobsClient:
        client = cls(await aio_pika.connect(url), exchange)
        channel = await client.connection.channel(on_return_raises=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.consume(client._reply, no_ack=True)
        client.reply_queue = queue.name
        client.channel = channel
        return client

    async def available(self, within: float) -> str | None:
        """None when a job comes back; else why jobs are not available."""
        probe = await self.connection.channel()
        try:
            await probe.declare_exchange(self.exchange_name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return f"no exchange {self.exchange_name} (the service has no jobs consumer)"
        finally:
            with contextlib.suppress(Exception):
                await probe.close()
        assert self.channel is not None
        self.exchange = await self.channel.get_exchange(self.exchange_name, ensure=False)
        try:
            reply = await asyncio.wait_for(self.send(), within)
        except aio_pika.exceptions.DeliveryError:
            return f"no queue bound to {self.exchange_name} for run.{PLUGIN}"
        except TimeoutError:
            return f"no reply within {within:g} s"
        if reply.get("reason") != "ok":
            return f"the job ended {reply}"
        return None

    async def send(self) -> dict[str, Any]:
        """Publishes one job (confirmed, mandatory) and returns the data of its final reply."""
        assert self.exchange is not None
        job_id = str(uuid.uuid4())
        event = CloudEvent(
            id=job_id, source="bench/plugins", type=JOB_TYPE, data={"input": INPUT}, subject=PLUGIN
        )
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[job_id] = done
        message = aio_pika.Message(
            orjson.dumps(event.data),
            content_type="application/json",
            message_id=job_id,
            correlation_id=job_id,
            reply_to=self.reply_queue,
            headers=encode_headers(event, None),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=JOB_EXPIRY_SECONDS,
        )
        try:
            await self.exchange.publish(message, routing_key=f"run.{PLUGIN}", mandatory=True)
            return await done
        finally:
            self.pending.pop(job_id, None)

    async def _reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        done = self.pending.get(message.correlation_id or "")
        if done is None or done.done():
            return
        try:
            data = orjson.loads(message.body) if message.body else {}
        except orjson.JSONDecodeError:
            data = {"reason": "unreadable reply"}
        if not isinstance(data, dict):
            data = {"reason": f"reply {data!r}"}
        if "progress" in data and "reason" not in data:
            return  # progress; the final reply follows
        done.set_result(data)

    async def close(self) -> None:
        await self.connection.close()


async def jobs_cell(
    service: Service, client: JobsClient, clients: int, args: argparse.Namespace
) -> Cell:
    async def job() -> bool:
        return (await client.send()).get("reason") == "ok"

    before = tree_cpu(service.pid)
    figures = await closed_loop(job, clients, args.duration, args.jobs_timeout)
    runs = figures.rps * args.duration
    return Cell(figures, (tree_cpu(service.pid) - before) / runs * 1000 if runs else 0.0)


# --- the peer baseline and the pool alone --------------------------------------------------------


async def start_pools(args: argparse.Namespace, workdir: Path) -> tuple[Plugin, dict[str, Any]]:
    from services.plugin_executor.adapters.plugins import PluginFolder
    from services.plugin_executor.adapters.pool import WorkerPool
    from services.plugin_executor.domain import Feature
    from services.plugin_executor.settings import PluginSettings

    settings = PluginSettings(plugin_dir=PLUGINS)
    plugins, problems = PluginFolder(PLUGINS, settings.limit_policy()).scan()
    if problems or [p.id.name for p in plugins] != [PLUGIN]:
        raise RuntimeError(f"bench/plugins should hold {PLUGIN} alone: {plugins}, {problems}")
    pools: dict[str, WorkerPool] = {}
    for name, disabled in (("all", frozenset()), ("none", frozenset(Feature))):
        pool = WorkerPool(
            work_dir=workdir / f"pool-{name}",
            size=args.pool_size,
            uid_base=UID_BASE[name],
            disabled=disabled,
            required=frozenset(),
        )
        pool.load(plugins)
        await pool.start()
        pools[name] = pool
    return plugins[0], pools


def pool_call(pool: WorkerPool, plugin: Plugin, cpu: list[float]) -> Callable[[], Awaitable[bool]]:
    """A run in `pool`; each run's own CPU (its process's rusage) goes into `cpu`."""

    async def call() -> bool:
        outcome = await pool.run(plugin, INPUT, plugin.limits)
        cpu.append(outcome.usage.cpu_s)
        return outcome.result == INPUT

    return call


# --- the run -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> Results:
    token = TokenIssuer.from_settings(Settings(jwt_secret=args.jwt_secret)).mint(
        "bench", ["plugins:run"], 3600
    )
    script = workdir / "post.lua"
    script.write_text(POST)
    scratch = workdir / "subprocess"
    scratch.mkdir()
    results = Results({}, {})
    plugin, pools = await start_pools(args, workdir)
    print(
        "pool layers: all = "
        + ", ".join(sorted(pools["all"].features().active))
        + f"; none = {', '.join(sorted(pools['none'].features().active)) or '(none)'}"
    )
    client = await JobsClient.open(args.amqp_url, args.jobs.exchange)
    try:
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_} (load average {os.getloadavg()[0]:.2f})", flush=True)
            modes = ("warm", "cold") if round_ % 2 else ("cold", "warm")
            for mode in modes:
                await measure_service(mode, args, workdir, token, script, client, results)
            if args.baseline is not None:
                await measure_baseline(args, workdir, token, script, results)
            for clients in CLIENTS:
                figures = await peer(clients, args.duration, scratch)
                results.add(f"subprocess c{clients}", Cell(figures))
            for clients in CLIENTS:
                for name in ("all", "none"):
                    cpu: list[float] = []
                    call = pool_call(pools[name], plugin, cpu)
                    await closed_loop(call, clients, WARM_UP_SECONDS, args.jobs_timeout)
                    cpu.clear()
                    figures = await closed_loop(call, clients, args.duration, args.jobs_timeout)
                    label = "all layers" if name == "all" else "no layers"
                    cell = Cell(figures, statistics.median(cpu) * 1000 if cpu else 0.0)
                    results.add(f"pool, {label} c{clients}", cell)
    finally:
        await args.jobs.delete(client.connection)
        await client.close()
        for pool in pools.values():
            await pool.close()
    return results


async def peer(clients: int, duration: int, scratch: Path) -> Figures:
    """The peer's cell, driven by `_peer.py` in a lean process of its own."""
    driver = await asyncio.create_subprocess_exec(
        PYTHON,
        *("-S", str(ROOT / "bench" / "_peer.py"), str(PLUGINS / PLUGIN), "--cwd", str(scratch)),
        *("--clients", str(clients), "--duration", str(duration)),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await driver.communicate()
    if driver.returncode:
        raise RuntimeError(f"the peer's driver failed (exit status {driver.returncode})")
    return Figures(**orjson.loads(output))


async def measure_service(
    mode: str,
    args: argparse.Namespace,
    workdir: Path,
    token: str,
    script: Path,
    client: JobsClient,
    results: Results,
) -> None:
    with serve(mode, args, workdir) as service:
        check_run(service, token)
        await asyncio.to_thread(
            wrk,
            f"{service.base}/v1/plugins/{PLUGIN}/run",
            connections=max(CLIENTS),
            duration=WARM_UP_SECONDS,
            threads=1,
            headers=[f"Authorization: Bearer {token}"],
            script=script,
        )
        for clients in CLIENTS:
            cell = await asyncio.to_thread(
                http_cell, service, token, clients, args.duration, script
            )
            results.add(f"http {mode} c{clients}", cell)
        why = await client.available(args.jobs_timeout)
        if why is not None:
            if mode not in results.jobs_unavailable:
                print(f"  jobs {mode}: not available ({why})")
            results.jobs_unavailable[mode] = why
            return
        for clients in CLIENTS:
            results.add(f"jobs {mode} c{clients}", await jobs_cell(service, client, clients, args))


async def measure_baseline(
    args: argparse.Namespace, workdir: Path, token: str, script: Path, results: Results
) -> None:
    """The warm service of another checkout (`--baseline`), over HTTP: before and after."""
    checkout = args.baseline.resolve()
    with serve("warm", args, workdir / "baseline", checkout) as service:
        check_run(service, token)
        for clients in CLIENTS:
            cell = await asyncio.to_thread(
                http_cell, service, token, clients, args.duration, script
            )
            results.add(f"http warm@{checkout.name} c{clients}", cell)


# --- the report ----------------------------------------------------------------------------------


def report(results: Results, args: argparse.Namespace) -> None:
    cells = results.cells
    print(
        f"\nmedians of {args.rounds} round(s) x {args.duration} s per cell; pool size "
        f"{args.pool_size} (the cores: {os.cpu_count()}); ended "
        f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average {os.getloadavg()[0]:.2f}"
    )
    print("| cell | runs/s | p50 ms | p99 ms | worst p99 ms | errors | server CPU ms/run |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in cells.items():
        figures = median([cell.figures for cell in runs])
        cpu = statistics.median(cell.cpu_ms for cell in runs)
        print(
            f"| {name} | {figures.rps:,.0f} | {figures.p50_ms:.2f} | {figures.p99_ms:.2f} "
            f"| {figures.worst_p99_ms:.2f} | {figures.errors} | {f'{cpu:.2f}' if cpu else '-'} |"
        )
    for mode, why in results.jobs_unavailable.items():
        print(f"| jobs {mode} | not available: {why} |||||| ")

    def rps(name: str) -> list[float]:
        return [cell.figures.rps for cell in cells.get(name, [])]

    def verdict(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    print("\ntargets (issue 13)")
    for clients in CLIENTS:
        warm = statistics.median(rps(f"http warm c{clients}"))
        print(f"  warm over HTTP >= 300 runs/s, {clients} client(s): {warm:,.0f}  "
              f"{verdict(warm >= 300)}")  # fmt: skip
    for clients in CLIENTS:
        for name in (f"http warm c{clients}", f"jobs warm c{clients}"):
            if name not in cells:
                continue
            ratios = sorted(
                ours / theirs
                for ours, theirs in zip(rps(name), rps(f"subprocess c{clients}"), strict=True)
                if theirs
            )
            ratio = statistics.median(ratios)
            print(
                f"  {name} / subprocess c{clients} (runs/s, same concurrency) >= 10x: "
                f"{ratio:.1f}x ({ratios[0]:.1f}-{ratios[-1]:.1f})  {verdict(ratio >= 10)}"
            )
    layered, bare = cells["pool, all layers c1"], cells["pool, no layers c1"]
    overheads = sorted(
        full.figures.p50_ms - none.figures.p50_ms for full, none in zip(layered, bare, strict=True)
    )
    overhead = statistics.median(overheads)
    print(
        f"  the layers' overhead per run (p50, all layers - none, 1 caller) <= 5 ms: "
        f"{overhead:.2f} ms ({overheads[0]:.2f} to {overheads[-1]:.2f})  {verdict(overhead <= 5)}"
    )
    cpu = statistics.median(f.cpu_ms - n.cpu_ms for f, n in zip(layered, bare, strict=True))
    print(
        f"  (their CPU per run, paid before the input arrives when a child is kept ready: "
        f"{cpu:.2f} ms, the runs' own CPU with all layers - none)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 6))
    parser.add_argument("--duration", type=int, default=5, choices=range(1, 31))
    parser.add_argument(
        "--pool-size", type=int, default=os.cpu_count() or 2, help="workers (default: the cores)"
    )
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("OUTRIGGER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        help="RabbitMQ, for the jobs and the service's audit records",
    )
    parser.add_argument(
        "--jobs-timeout", type=float, default=10.0, help="seconds a job's reply is awaited"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also measure the warm service of this copy of the repository (another revision, "
        "say `git archive <commit> | tar -x -C /tmp/plugins-<commit>`, with bench/plugins)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    args = parser.parse_args()
    args.jwt_secret = secrets.token_urlsafe(32)
    args.jobs = JobsTopology.new()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="plugins-bench-"))
    workdir.chmod(0o711)  # runs under uids of their own reach their work folders below
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load average at the start: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    try:
        results = asyncio.run(run(args, workdir))
    finally:
        if args.keep_logs:
            print(f"logs kept in {workdir}")
            for folder in workdir.iterdir():
                if folder.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(results, args)


if __name__ == "__main__":
    main()
