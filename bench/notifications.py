"""SSE fan-out: the notifications service beside nchan and a minimal sse-starlette broadcast app.

In one run, for each subscriber count (1,000, 5,000 and 10,000 by default) and each target, on a
server started for that cell alone (the order of the targets turns by one at every count):

- `nchan`: Debian nginx + libnginx-mod-nchan, configured from `../shared/peers/nchan.conf.tmpl`
  with 1 worker, on a free port (run as root: `nginx -c <file>`); publish `POST /pub`,
  subscribe `GET /sub` with `Accept: text/event-stream`.
- `starlette`: a minimal sse-starlette broadcast app served by this script (one uvicorn worker,
  uvloop and httptools, an unbounded `asyncio.Queue` per subscriber, no access log).
- `outrigger`: `outrigger serve notifications` as shipped, one process, on the Redis of
  `--redis-url` with a key prefix of its own (its keys are deleted at the end); only the Redis
  URL, a JWT secret, the port, a data directory, the key prefix and `OUTRIGGER_HTTP_MAX_CONNECTIONS`
  (at least the subscribers) are set. Publish `POST /v1/channels/bench/events`, subscribe
  `GET /v1/sse?channel=bench`, with a token of scopes `notify:subscribe notify:publish` on
  channels `["**"]`.

Each cell: one subscriber checks that a published message arrives; the server's memory is read;
N subscribers connect (at `--connect-rate`, each with up to `--retries` retries) from
`--client-processes` client processes; the memory is read again; then 100 messages are published
at 10/s from one keep-alive connection, each carrying its publish time (`time.time_ns()`) in its
data (`{"seq": i, "t": ns}`), until every subscriber has them all or `--drain` seconds after the
last publish. Figures:

- latency p50/p99 over every (subscriber, message) receipt: the subscriber's receipt time
  (`time.time_ns()` when its bytes reach the client's loop) minus the time in the data;
- deliveries/s: receipts over the time from the first publish to the last receipt;
- missing: the N x 100 receipts that never came (a subscriber that failed to connect misses all);
- memory per subscriber: the server's VmRSS (nginx: its worker) after connecting all minus
  before, over N; CPU: the server's utime + stime from the first publish to the last receipt.

The load client (`_sseload.py`): uvloop, one asyncio Protocol per connection that only looks
for `data:` lines, in one client process per 5,000 subscribers (`--client-processes`). Each
process stamps its connections' receipts one after another, so a burst of N receipts costs it
N x ~6 µs: its loop lag (a 20 ms timer's overshoot while messages flow) is printed beside its CPU,
and a lag near the latencies means the client, not the server, set them. On 2 cores the client
and the server share the CPU. Every phase has a deadline; a target that does not start, or
whose check subscriber gets no message, stops the run with an error.

    .venv/bin/python bench/notifications.py                         # 1,000 / 5,000 / 10,000
    .venv/bin/python bench/notifications.py --subscribers 1000 --targets nchan,starlette
    .venv/bin/python bench/notifications.py --rounds 3 --json /tmp/notifications.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import json
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _httpload import ROOT, free_port, process, wait_http
from _sseload import LoadClients, Receipts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from starlette.requests import Request

PYTHON = sys.executable
TARGETS = ("nchan", "starlette", "outrigger")
CHANNEL = "bench"
CHECK_SEQ = -1
PEERS = ROOT.parent / "shared" / "peers"
MEDIANS = ["p50_ms", "p99_ms", "deliveries_per_second", "kb_per_subscriber"]
MEDIANS += ["server_cpu_seconds", "publish_rate"]
SUBSCRIBERS_PER_CLIENT = 5_000  # client processes by default: one per 5,000 subscribers


# --- the servers ------------------------------------------------------------------------------


@dataclass
class Server:
    """A started target: where to publish and subscribe, and which processes to read."""

    name: str
    port: int
    publish_path: str
    subscribe_path: str
    headers: dict[str, str]
    body: Callable[[int, int], bytes]
    pids: Callable[[], list[int]]
    log: Path


def data_text(seq: int, published_ns: int) -> bytes:
    return b'{"seq":%d,"t":%d}' % (seq, published_ns)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def with_descendants(pid: int) -> list[int]:
    found = [pid]
    for child in children(pid):
        found += with_descendants(child)
    return found


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                total += int(row.split()[1])
    return total


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_ready(name: str, url: str, child: subprocess.Popen[bytes], log: Path) -> None:
    """Returns once `url` answers; a child that exits or a minute of silence is an error."""
    deadline = time.monotonic() + 60
    while True:
        if child.poll() is not None:
            why = f"it exited with status {child.returncode}"
            break
        try:
            wait_http(url, timeout=0.5)
        except RuntimeError:
            if time.monotonic() > deadline:
                why = f"{url} did not answer within 60 s"
                break
        else:
            return
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
    lines = "\n".join(f"    {row}" for row in tail)
    raise RuntimeError(f"target {name} did not start: {why}; its log ends:\n{lines}")


@contextlib.contextmanager
def serve_nchan(args: argparse.Namespace, workdir: Path, subscribers: int) -> Iterator[Server]:
    if os.geteuid() != 0:
        raise RuntimeError("target nchan: nginx must run as root (nginx -c <file>); run as root")
    template = args.nchan_template.read_text()
    if "127.0.0.1:8090" not in template:
        raise RuntimeError(f"{args.nchan_template}: no 'listen 127.0.0.1:8090' to move")
    run = workdir / f"nchan-{secrets.token_hex(3)}"
    (run / "tmp").mkdir(parents=True)
    run.chmod(0o755)  # the worker runs as www-data
    port = free_port()
    conf = run / "nginx.conf"
    conf.write_text(
        template.replace("@RUN@", str(run))
        .replace("@WORKERS@", "1")
        .replace("127.0.0.1:8090", f"127.0.0.1:{port}")
    )
    log = run / "error.log"
    with process(["nginx", "-c", str(conf), "-e", str(log)], log=run / "nginx.out") as master:
        wait_ready("nchan", f"http://127.0.0.1:{port}/pub", master, log)
        yield Server(
            "nchan",
            port,
            "/pub",
            "/sub",
            {"Accept": "text/event-stream"},
            data_text,
            lambda: children(master.pid),
            log,
        )


def serve_starlette_app(port: int) -> None:
    """The peer: a minimal sse-starlette broadcast app, an asyncio.Queue per subscriber."""
    import uvicorn
    from sse_starlette import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    queues: set[asyncio.Queue[str]] = set()

    async def publish(request: Request) -> Response:
        data = (await request.body()).decode()
        for queue in queues:
            queue.put_nowait(data)
        return Response(status_code=202)

    async def subscribe(request: Request) -> EventSourceResponse:
        queue: asyncio.Queue[str] = asyncio.Queue()
        queues.add(queue)

        async def events() -> Any:
            try:
                while True:
                    yield {"data": await queue.get()}
            finally:
                queues.discard(queue)

        return EventSourceResponse(events())

    routes = [Route("/pub", publish, methods=["POST"]), Route("/sub", subscribe)]
    uvicorn.run(
        Starlette(routes=routes),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


@contextlib.contextmanager
def serve_starlette(args: argparse.Namespace, workdir: Path, subscribers: int) -> Iterator[Server]:
    port = free_port()
    log = workdir / f"starlette-{port}.log"
    with process([PYTHON, __file__, "--serve-starlette", str(port)], log=log) as child:
        wait_ready("starlette", f"http://127.0.0.1:{port}/pub", child, log)
        yield Server(
            "starlette",
            port,
            "/pub",
            "/sub",
            {"Accept": "text/event-stream"},
            data_text,
            lambda: with_descendants(child.pid),
            log,
        )


@contextlib.contextmanager
def serve_outrigger(args: argparse.Namespace, workdir: Path, subscribers: int) -> Iterator[Server]:
    port = free_port()
    log = workdir / f"outrigger-{port}.log"
    env = {
        "OUTRIGGER_REDIS_URL": args.redis_url,
        "OUTRIGGER_JWT_SECRET": args.jwt_secret,
        "OUTRIGGER_PORT": str(port),
        "OUTRIGGER_DATA_DIR": str(workdir / f"data-{port}"),
        "OUTRIGGER_NOTIFICATIONS_KEY_PREFIX": args.key_prefix,
        "OUTRIGGER_HTTP_MAX_CONNECTIONS": str(max(20_000, subscribers + 100)),
    }
    outrigger = str(Path(PYTHON).parent / "outrigger")
    with process([outrigger, "serve", "notifications"], env, log) as child:
        wait_ready("outrigger", f"http://127.0.0.1:{port}/readyz", child, log)

        def body(seq: int, published_ns: int) -> bytes:
            return b'{"event":"tick","data":%s}' % data_text(seq, published_ns)

        yield Server(
            "outrigger",
            port,
            f"/v1/channels/{CHANNEL}/events",
            f"/v1/sse?channel={CHANNEL}",
            {"Accept": "text/event-stream", "Authorization": f"Bearer {args.token}"},
            body,
            lambda: with_descendants(child.pid),
            log,
        )


SERVE = {"nchan": serve_nchan, "starlette": serve_starlette, "outrigger": serve_outrigger}


def subscribe_request(server: Server) -> bytes:
    lines = [f"GET {server.subscribe_path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in server.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- one cell: a target at a subscriber count ---------------------------------------------------


@dataclass
class Cell:
    target: str
    subscribers: int
    messages: int
    connected: int = 0
    connect_failures: dict[str, int] = field(default_factory=dict)
    connect_seconds: float = 0.0
    published: int = 0
    publish_errors: list[str] = field(default_factory=list)
    publish_rate: float = 0.0
    publish_p50_ms: float = 0.0
    """How long a publish request took, to its answer (median and slowest)."""
    publish_max_ms: float = 0.0
    expected: int = 0
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    parse_errors: int = 0
    other_messages: int = 0
    dropped_connections: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    deliveries_per_second: float = 0.0
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    kb_per_subscriber: float = 0.0
    server_cpu_seconds: float = 0.0
    client_processes: int = 0
    client_cpu_seconds: float = 0.0
    client_lag_p99_ms: float = 0.0
    client_lag_max_ms: float = 0.0
    slowest_ms: list[float] = field(default_factory=list)
    """Per message: its slowest receipt."""


class Publisher:
    """Publishes over one keep-alive connection, opened again after an error."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.connection: http.client.HTTPConnection | None = None
        self.headers = {"Content-Type": "application/json"}
        if "Authorization" in server.headers:
            self.headers["Authorization"] = server.headers["Authorization"]

    def publish(self, seq: int) -> tuple[int, str | None]:
        """Publishes message `seq`; its publish time, and what went wrong (None if nothing)."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        published = time.time_ns()
        try:
            body = self.server.body(seq, published)
            self.connection.request("POST", self.server.publish_path, body, self.headers)
            answer = self.connection.getresponse()
            text = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return published, f"{type(exc).__name__}: {exc}"
        if not 200 <= answer.status < 300:
            return published, f"HTTP {answer.status}: {text[:200]!r}"
        return published, None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def check_delivery(server: Server, timeout: float = 15.0) -> None:
    """One subscriber receives one published message, or the target is broken."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(subscribe_request(server))
        deadline = time.monotonic() + timeout
        received = b""
        with contextlib.suppress(TimeoutError):
            while b"\r\n\r\n" not in received and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        if not received.startswith(b"HTTP/1.1 200"):
            head = received.split(b"\r\n\r\n")[0].decode(errors="replace")
            raise RuntimeError(f"target {server.name}: subscribing answered {head!r}")
        publisher = Publisher(server)
        _, error = publisher.publish(CHECK_SEQ)
        publisher.close()
        if error:
            raise RuntimeError(f"target {server.name}: publishing failed: {error}")
        while b'"seq":%d' % CHECK_SEQ not in received:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                chunk = b""
            if not chunk:
                raise RuntimeError(
                    f"target {server.name}: a subscriber did not receive a published message "
                    f"within {timeout:g} s (got {received[-300:]!r})"
                )
            received += chunk


def measure(server: Server, args: argparse.Namespace, subscribers: int) -> Cell:
    """One cell: check, memory before, connect all, memory after, publish, drain, collect."""
    cell = Cell(server.name, subscribers, args.messages)
    check_delivery(server)
    time.sleep(1.0)
    pids = server.pids()
    if not pids:
        raise RuntimeError(f"target {server.name}: no server process to read")
    cell.rss_before_kb = rss_kb(pids)
    cell.client_processes = args.client_processes or -(-subscribers // SUBSCRIBERS_PER_CLIENT)
    with LoadClients(
        server.port,
        subscribe_request(server),
        subscribers,
        args.messages,
        processes=cell.client_processes,
        connect_rate=args.connect_rate,
        retries=args.retries,
        connect_seconds=subscribers / args.connect_rate + args.connect_grace,
    ) as clients:
        connected = clients.connected()
        cell.connected, cell.connect_seconds = connected.connected, connected.connect_seconds
        cell.connect_failures = dict(connected.connect_failures.most_common(5))
        if not cell.connected:
            raise RuntimeError(f"target {server.name}: no subscriber connected ({cell_line(cell)})")
        time.sleep(1.0)
        cell.rss_after_kb = rss_kb(pids)
        cell.kb_per_subscriber = (cell.rss_after_kb - cell.rss_before_kb) / cell.connected
        cpu_before = cpu_seconds(pids)
        first_ns = publish(server, args, cell, clients)
        drain_until = time.monotonic() + args.drain
        expected = cell.connected * cell.published
        while clients.poll(0.05) < expected and time.monotonic() < drain_until:
            pass
        cell.server_cpu_seconds = cpu_seconds(pids) - cpu_before
        return summarize(cell, clients.stop(), first_ns)


def publish(server: Server, args: argparse.Namespace, cell: Cell, clients: LoadClients) -> int:
    """Publishes the messages on schedule (late ones at once); the first one's publish time."""
    publisher = Publisher(server)
    interval = 1 / args.rate
    first_ns, published_at, took = 0, [], []
    start = time.monotonic() + 0.1
    deadline = start + args.messages * interval + args.drain
    for seq in range(args.messages):
        while (left := start + seq * interval - time.monotonic()) > 0:
            clients.poll(left)
        if time.monotonic() > deadline:
            cell.publish_errors.append(f"publish deadline passed before message {seq}")
            break
        sent = time.monotonic()
        published_ns, error = publisher.publish(seq)
        took.append(time.monotonic() - sent)
        first_ns = first_ns or published_ns
        if error:
            cell.publish_errors.append(f"message {seq}: {error}")
            continue
        published_at.append(sent)
    publisher.close()
    cell.published = len(published_at)
    if cell.published > 1:
        cell.publish_rate = (cell.published - 1) / (published_at[-1] - published_at[0])
    if took:
        cell.publish_p50_ms = statistics.median(took) * 1000
        cell.publish_max_ms = max(took) * 1000
    return first_ns


def summarize(cell: Cell, receipts: Receipts, first_ns: int) -> Cell:
    ordered = sorted(receipts.latencies_us)
    cell.expected = cell.subscribers * cell.messages
    cell.delivered = len(ordered)
    cell.missing = cell.expected - cell.delivered
    cell.duplicates, cell.parse_errors = receipts.duplicates, receipts.parse_errors
    cell.other_messages = receipts.other
    cell.dropped_connections = receipts.dropped
    cell.client_cpu_seconds = receipts.cpu_seconds
    cell.client_lag_p99_ms, cell.client_lag_max_ms = receipts.lag_p99_ms, receipts.lag_max_ms
    cell.slowest_ms = [round(slowest / 1000, 1) for slowest in receipts.slowest_us]
    if ordered:
        cell.p50_ms = ordered[len(ordered) // 2] / 1000
        cell.p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
        cell.max_ms = ordered[-1] / 1000
        cell.deliveries_per_second = cell.delivered / ((receipts.last_ns - first_ns) / 1e9)
    return cell


def cell_line(cell: Cell) -> str:
    """The cell's figures, then how the publisher and the client fared, then what went wrong."""
    notes = []
    if cell.connected < cell.subscribers:
        failures = "; ".join(f"{why} x{n}" for why, n in cell.connect_failures.items())
        notes.append(f"{cell.subscribers - cell.connected} not connected ({failures})")
    if cell.publish_errors:
        notes.append(f"{len(cell.publish_errors)} publish errors ({cell.publish_errors[0]})")
    for name in ("duplicates", "parse_errors", "dropped_connections"):
        if getattr(cell, name):
            notes.append(f"{getattr(cell, name)} {name.replace('_', ' ')}")
    return "".join(
        [
            f"  {cell.target:<10} {cell.subscribers:>6,} subscribers: p50 {cell.p50_ms:7.1f} ms  "
            f"p99 {cell.p99_ms:7.1f} ms  {cell.deliveries_per_second:>7,.0f} deliveries/s  "
            f"missing {cell.missing:,} of {cell.expected:,}  {cell.kb_per_subscriber:5.1f} KB "
            f"per subscriber  server CPU {cell.server_cpu_seconds:5.2f} s\n",
            f"      published {cell.published} at {cell.publish_rate:.2f}/s (POST p50 "
            f"{cell.publish_p50_ms:.0f} ms, max {cell.publish_max_ms:.0f} ms); client: "
            f"{cell.client_processes} process(es), CPU {cell.client_cpu_seconds:.1f} s, loop lag "
            f"p99 {cell.client_lag_p99_ms:.0f} ms, max {cell.client_lag_max_ms:.0f} ms",
            *(f"\n      {note}" for note in notes),
        ]
    )


# --- the run ------------------------------------------------------------------------------------


def raise_open_files(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, needed)
    if want > hard and os.geteuid() != 0:
        raise RuntimeError(f"{needed} open files are needed, the hard limit is {hard}: raise it")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    return want


def run(args: argparse.Namespace) -> tuple[list[Cell], dict[str, Any]]:
    """Every cell, in rounds; and what the JSON says of the run (when, load, versions)."""
    raise_open_files(max(args.subscribers) + 4096)
    cells: list[Cell] = []
    about: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "versions": versions(args.targets),
    }
    print(
        f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{args.messages} messages at {args.rate:g}/s per cell, targets {', '.join(args.targets)}"
    )
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="notifications-bench-"))
        if args.keep_logs:
            print(f"logs in {workdir} (kept)")
        else:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if "outrigger" in args.targets:
            stack.callback(forget_keys, args.redis_url, args.key_prefix)
        for round_ in range(args.rounds):
            for turn, subscribers in enumerate(args.subscribers):
                print(f"round {round_ + 1}, {subscribers:,} subscribers")
                shift = (turn + round_) % len(args.targets)
                for name in args.targets[shift:] + args.targets[:shift]:
                    with SERVE[name](args, workdir, subscribers) as server:
                        cell = measure(server, args, subscribers)
                    cells.append(cell)
                    print(cell_line(cell), flush=True)
    about["load_average_end"] = os.getloadavg()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return cells, about


def versions(targets: list[str]) -> dict[str, str]:
    from importlib.metadata import version

    found = {"python": sys.version.split()[0], "uvicorn": version("uvicorn")}
    uvloop = importlib.util.find_spec("uvloop") is not None
    found["client loop"] = f"uvloop {version('uvloop')}" if uvloop else "asyncio"
    if "starlette" in targets:
        found["sse-starlette"] = version("sse-starlette")
    if "nchan" in targets:
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=True)
        found["nginx"] = nginx.stderr.strip().rsplit("/", 1)[-1]
        nchan = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "libnginx-mod-nchan"],
            capture_output=True,
            text=True,
            check=False,
        )
        found["nchan"] = nchan.stdout.strip() or "unknown"
    return found


def forget_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def report(cells: list[Cell], args: argparse.Namespace) -> None:
    grouped: dict[tuple[int, str], list[Cell]] = {}
    for cell in cells:
        grouped.setdefault((cell.subscribers, cell.target), []).append(cell)
    rounds = ""
    if args.rounds > 1:
        rounds = f"medians of {args.rounds} rounds (missing: the most of any round), "
    print(f"\n{rounds}{args.messages} messages at {args.rate:g}/s")
    print(
        "| subscribers | target | p50 ms | p99 ms | deliveries/s | missing | KB/subscriber "
        "| server CPU s | published/s |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    medians: dict[tuple[int, str], dict[str, float]] = {}
    for (subscribers, target), runs in grouped.items():
        m = {name: statistics.median(getattr(c, name) for c in runs) for name in MEDIANS}
        m["missing"] = max(c.missing for c in runs)
        medians[subscribers, target] = m
        print(
            f"| {subscribers:,} | {target} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} "
            f"| {m['deliveries_per_second']:,.0f} | {m['missing']:,.0f} "
            f"| {m['kb_per_subscriber']:.1f} | {m['server_cpu_seconds']:.2f} "
            f"| {m['publish_rate']:.2f} |"
        )
    ours = medians.get((10_000, "outrigger"))
    if ours:
        print(
            f"\noutrigger at 10,000: missing {ours['missing']:,.0f} (target 0), p99 "
            f"{ours['p99_ms']:.0f} ms (target <= 250), {ours['kb_per_subscriber']:.1f} KB per "
            "subscriber (target <= 25)"
        )
    ours, peer = medians.get((5_000, "outrigger")), medians.get((5_000, "nchan"))
    if ours and peer:
        print(
            f"outrigger at 5,000: p99 {ours['p99_ms']:.0f} ms = "
            f"{ours['p99_ms'] / peer['p99_ms']:.2f}x nchan's {peer['p99_ms']:.0f} ms (target <= 2x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--subscribers", default="1000,5000,10000", help="comma-separated")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="messages published per second")
    parser.add_argument("--rounds", type=int, default=1, choices=range(1, 6))
    parser.add_argument(
        "--client-processes", type=int, default=0, help="0: one per 2,500 subscribers"
    )
    parser.add_argument("--connect-rate", type=float, default=1000.0, help="connections/s")
    parser.add_argument("--connect-grace", type=float, default=30.0, help="seconds beyond N/rate")
    parser.add_argument("--retries", type=int, default=3, help="per subscriber connection")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds after the last publish")
    parser.add_argument("--nchan-template", type=Path, default=PEERS / "nchan.conf.tmpl")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("OUTRIGGER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--json", type=Path, help="also write every cell as JSON here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    parser.add_argument("--serve-starlette", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_starlette:
        serve_starlette_app(args.serve_starlette)
        return
    args.targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown or not args.targets:
        parser.error(f"--targets: choose among {', '.join(TARGETS)} (got {args.targets})")
    args.subscribers = [int(n) for n in args.subscribers.split(",")]
    if "nchan" in args.targets and not args.nchan_template.is_file():
        parser.error(f"--nchan-template: {args.nchan_template} is not a file")
    if "outrigger" in args.targets:
        from outrigger.auth import TokenIssuer
        from outrigger.settings import Settings

        args.jwt_secret = secrets.token_urlsafe(32)
        args.key_prefix = f"bench-{secrets.token_hex(4)}"
        issuer = TokenIssuer.from_settings(Settings(jwt_secret=args.jwt_secret))
        scopes = ["notify:subscribe", "notify:publish"]
        args.token = issuer.mint("bench", scopes, 7200, channels=["**"])
    try:
        cells, about = run(args)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
    report(cells, args)
    if args.json:
        run_of = {"messages": args.messages, "rate": args.rate, "rounds": args.rounds, **about}
        cells_of = [asdict(cell) for cell in cells]
        args.json.write_text(json.dumps({**run_of, "cells": cells_of}, indent=2) + "\n")
        print(f"\nevery cell in {args.json}")


if __name__ == "__main__":
    main()
