"""Appends over HTTP: the event-store service beside a minimal FastAPI app calling the same
stored append function.

In one run, on one throwaway PostgreSQL database (created, migrated, dropped), in interleaved
rounds, with the same load tool (`wrk --latency`, 1, 8 and 32 connections, 1 and 100 events per
request, each connection writing its own streams):

- `event-store`: `outrigger serve event-store` as shipped, by its default settings (1 uvicorn
  worker, JWT on every request, JSON access log, the sequencer running, the relay publishing
  every event to a throwaway exchange on the real RabbitMQ with confirms), `POST
  /v1/streams/{id}/events` with `expected_version: "any"`;
- `minimal`: a bare FastAPI app (served by this script, same uvicorn) that parses the same body
  and calls `event_store.append()` on the same database with the events as JSON, through a
  psycopg pool of the service's size: the same database work (stream lock, xid stamp, insert,
  stream version; sequenced and relayed by the service like its own) with no auth, no
  validation, no log.

Before every cell the script waits until the relay has published everything appended so far, so
no cell pays for the backlog of the one before. Then the catch-up read rate over HTTP: the global
log paged with `GET /v1/log?limit=1000`, and a Server-Sent Events subscription from position 0
to the head. Prints every run, then medians with the worst round's p99, and the ratio the issue
sets (>= 0.8x minimal at 8 and 32 clients). Bounded: at most 5 rounds of at most 30 s per cell.
Removes what it made: the database, the exchange, the logs (`--keep-logs` keeps them).
`--relay-process` measures the variant where the relay runs as a process of its own.

    .venv/bin/python bench/event_store_http.py                  # 3 rounds x 5 s
    .venv/bin/python bench/event_store_http.py --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import psycopg
from _httpload import Figures, free_port, line, median, process, wait_http, wrk
from _servers import add_server_options, throwaway_database
from fastapi import FastAPI, Request, Response  # module level: the annotations resolve here

from outrigger.auth import TokenIssuer
from outrigger.settings import Settings
from services.event_store.adapters.postgres_connection import conninfo

PYTHON = sys.executable
CLIENTS, SIZES = (1, 8, 32), (1, 100)
DATA = '{"n": 0, "text": "a small event of about sixty bytes of JSON"}'
POOL_SIZE = 20  # the service's default: database_pool_size 10 + database_max_overflow 10

# Each wrk thread numbers its requests and appends to a thousand streams of its own.
LOAD = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
  wrk.headers["Content-Type"] = "application/json"
  local event = '{"type": "Happened", "data": DATA}'
  body = '{"expected_version": "any", "events": [' .. string.rep(event, SIZE, ',') .. ']}'
end
function request()
  n = n + 1
  local path = "PREFIX" .. tid .. "-" .. (n % 1000) .. "/events"
  return wrk.format("POST", path, nil, body)
end
"""


def serve_minimal(port: int, url: str) -> None:
    import contextlib as _contextlib
    import uuid

    import orjson
    import uvicorn
    from psycopg_pool import AsyncConnectionPool

    append_sql = "SELECT * FROM event_store.append(%s, NULL, %s::jsonb)"

    @_contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        pool = AsyncConnectionPool(
            conninfo(url), min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
            kwargs={"autocommit": True},
        )  # fmt: skip
        await pool.open(wait=True)
        app.state.pool = pool
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/streams/{stream_id}/events", status_code=201)
    async def append(stream_id: str, request: Request) -> Response:
        events = orjson.loads(await request.body())["events"]
        batch = [
            {"id": uuid.uuid4(), "schema_version": 1, "metadata": {}, **event} for event in events
        ]
        async with app.state.pool.connection() as connection:
            cursor = await connection.execute(append_sql, (stream_id, orjson.dumps(batch).decode()))
            first, last, _ = await cursor.fetchone()
        body = orjson.dumps({"stream_id": stream_id, "first_version": first, "last_version": last})
        return Response(body, status_code=201, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def load_script(workdir: Path, size: int, prefix: str) -> Path:
    path = workdir / f"append-{size}-{prefix}.lua"
    script = LOAD.replace("DATA", DATA).replace("SIZE", str(size))
    path.write_text(script.replace("PREFIX", f"/v1/streams/{prefix}"))
    return path


def settle(url: str, checkpoint: str, timeout: float = 300.0) -> float:
    """Waits until every appended event is sequenced and relayed; returns the seconds waited.

    Between cells, so no cell pays for the relay's backlog of the one before.
    """
    started = time.monotonic()
    query = (
        "SELECT (SELECT count(*) FROM event_store.events), "
        "(SELECT last_position FROM event_store.sequencer_state), "
        "(SELECT coalesce(max(position), 0) FROM event_store.checkpoints WHERE name = %s)"
    )
    with psycopg.connect(conninfo(url), autocommit=True) as connection:
        while time.monotonic() - started < timeout:
            row = connection.execute(query, (checkpoint,)).fetchone()
            assert row is not None
            if row[0] == row[1] == row[2]:
                return time.monotonic() - started
            time.sleep(0.2)
    raise RuntimeError(f"the relay did not catch up within {timeout:g} s")


def catch_up(base: str, token: str) -> tuple[int, float, float]:
    """Events in the log, and events/s reading them by pages and over SSE."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        started, after, count = time.perf_counter(), 0, 0
        while True:
            page = client.get("/v1/log", params={"after": after, "limit": 1000})
            page.raise_for_status()
            events = page.json()["events"]
            if not events:
                break
            count += len(events)
            after = events[-1]["global_position"]
        paged = count / (time.perf_counter() - started)
        started, seen = time.perf_counter(), 0
        with client.stream("GET", "/v1/subscribe", params={"after": 0}) as stream:
            for text in stream.iter_lines():
                if text.startswith("id:"):
                    seen += 1
                    if seen >= count:
                        break
        streamed = seen / (time.perf_counter() - started)
    return count, paged, streamed


def run(args: argparse.Namespace, url: str, workdir: Path) -> None:
    run_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    token = TokenIssuer.from_settings(Settings(jwt_secret=secret)).mint(
        "bench", ["events:read", "events:write"], 3600
    )
    ports = {"event-store": free_port(), "minimal": free_port()}
    env = {
        "OUTRIGGER_DATABASE_URL": url,
        "OUTRIGGER_AMQP_URL": args.amqp_url,
        "OUTRIGGER_JWT_SECRET": secret,
        "OUTRIGGER_PORT": str(ports["event-store"]),
        "OUTRIGGER_EVENT_STORE_RELAY_EXCHANGE": f"bench.events.{run_id}",
        "OUTRIGGER_EVENT_STORE_RELAY_CHECKPOINT": f"bench-{run_id}",
    }
    checkpoint = env["OUTRIGGER_EVENT_STORE_RELAY_CHECKPOINT"]
    outrigger = str(Path(PYTHON).parent / "outrigger")
    results: dict[str, list[Figures]] = {}
    with contextlib.ExitStack() as stack:
        serve = [outrigger, "serve", "event-store"]
        if args.relay_process:  # the variant: the relay (and sequencer) in a process of its own
            relay_env = {**env, "OUTRIGGER_PORT": str(free_port())}
            relay_env["OUTRIGGER_EVENT_STORE_API_ENABLED"] = "false"
            stack.enter_context(process(serve, relay_env, workdir / "relay.log"))
            env["OUTRIGGER_EVENT_STORE_RELAY_ENABLED"] = "false"
        stack.enter_context(process(serve, env, workdir / "event-store.log"))
        minimal = [PYTHON, __file__, "--serve-minimal", str(ports["minimal"]), "--url", url]
        stack.enter_context(process(minimal, log=workdir / "minimal.log"))
        for port in ports.values():
            wait_http(f"http://127.0.0.1:{port}/readyz")
        print(
            f"{args.rounds} rounds x {args.duration} s per cell; logs in {workdir}"
            + (" (kept)" if args.keep_logs else " (removed at the end)")
        )
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}")
            for size in SIZES:
                for clients in CLIENTS:
                    for name, port in ports.items():
                        settle(url, checkpoint)
                        prefix = f"b{run_id}r{round_}{name[0]}{size}c{clients}t"
                        figures = wrk(
                            f"http://127.0.0.1:{port}",
                            connections=clients,
                            duration=args.duration,
                            headers=[f"Authorization: Bearer {token}"],
                            script=load_script(workdir, size, prefix),
                            label=name,
                        )
                        cell = f"{name} x{size} c{clients}"
                        results.setdefault(cell, []).append(figures)
                        print(line(cell, figures, "appends/s"))
        count, paged, streamed = catch_up(f"http://127.0.0.1:{ports['event-store']}", token)
    delete_exchange(args.amqp_url, env["OUTRIGGER_EVENT_STORE_RELAY_EXCHANGE"])
    variant = "relay in its own process" if args.relay_process else "as shipped"
    report(results, count, paged, streamed, variant)


def delete_exchange(amqp_url: str, name: str) -> None:
    async def delete() -> None:
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            await channel.exchange_delete(name)

    asyncio.run(delete())


def report(
    results: dict[str, list[Figures]], count: int, paged: float, streamed: float, variant: str
) -> None:
    medians = {cell: median(runs) for cell, runs in results.items()}
    print(f"\nevent-store {variant}: medians (events/s = appends/s x events per append)")
    print("| events/append | clients | event-store appends/s | p50 ms | p99 ms (worst) | events/s "
          "| minimal appends/s | p50 ms | p99 ms (worst) | ratio |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        for clients in CLIENTS:
            ours, base = (
                medians[f"event-store x{size} c{clients}"],
                medians[f"minimal x{size} c{clients}"],
            )
            errors = f" ({ours.errors} non-2xx)" if ours.errors else ""
            print(
                f"| {size} | {clients} | {ours.rps:,.0f}{errors} | {ours.p50_ms:.1f} | "
                f"{ours.p99_ms:.1f} ({ours.worst_p99_ms:.1f}) | {ours.rps * size:,.0f} | "
                f"{base.rps:,.0f} | {base.p50_ms:.1f} | {base.p99_ms:.1f} "
                f"({base.worst_p99_ms:.1f}) | {ours.rps / base.rps:.2f}x |"
            )
    for clients in (8, 32):
        ours, base = medians[f"event-store x1 c{clients}"], medians[f"minimal x1 c{clients}"]
        print(
            f"\nsingle-event appends at {clients} clients: {ours.rps:,.0f}/s, "
            f"{ours.rps / base.rps:.2f}x minimal (target >= 0.8x)"
        )
    print(f"catch-up over HTTP, {count:,} events: /v1/log pages {paged:,.0f} events/s, "
          f"SSE {streamed:,.0f} events/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 6))
    parser.add_argument("--duration", type=int, default=5, choices=range(1, 31))
    add_server_options(parser, amqp=True)
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    parser.add_argument(
        "--relay-process",
        action="store_true",
        help="the variant: the relay in a process of its own (OUTRIGGER_EVENT_STORE_API_ENABLED"
        "=false), the API with OUTRIGGER_EVENT_STORE_RELAY_ENABLED=false",
    )
    parser.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_minimal:
        serve_minimal(args.serve_minimal, args.url)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="event-store-http-"))
    try:
        with throwaway_database(args.url, "es_http_bench") as url:
            run(args, url, workdir)
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
