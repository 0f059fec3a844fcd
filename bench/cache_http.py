"""GET and PUT over HTTP at 50 connections: the cache as shipped, beside its peers and ceiling.

In one run, in interleaved rounds (every target once per round, after a warm-up run of each;
the order turns by one every round), with the same load tool (`wrk -c 50 -t 2 -d 10s
--latency`) against every HTTP target, all on the same Redis:

- `cache`: `outrigger serve cache` as shipped, by default settings (1 uvicorn worker, uvloop and
  httptools, a JWT verified per request, the JSON access log, bus in memory). Only what it
  cannot run without is set: the Redis URL, a JWT secret, its port and a data directory of its
  own. GET of a 100-byte entry; PUT of one.
- `cache, access log off`: the same service with one other setting, `OUTRIGGER_ACCESS_LOG=off`.
- `cache@DIR` (with `--baseline DIR`): the service of another copy of this repository (say
  `git archive <commit> | tar -x -C /tmp/cache-<commit>`), served the same way by this
  virtualenv; named after the directory.
- `minimal`: a bare FastAPI app doing one `redis.asyncio` GET per request (redis-py, with
  hiredis as installed), served by this script.
- `webdis`: the Debian `webdis` (GET /GET/<key>, PUT /SET/<key>), on 127.0.0.1:7379.
- `redis-benchmark -t set,get -c 50` on the same Redis: the ceiling.

The services' output goes to /dev/null. Every figure is the median of its rounds; `worst p99` is
the highest p99 any round had. The script stops what it started (by PID) and removes what it
created: its Redis keys, the services' data directory, Webdis's configuration and log.

    .venv/bin/python bench/cache_http.py                          # 3 rounds x 10 s
    .venv/bin/python bench/cache_http.py --rounds 5 --duration 15
    .venv/bin/python bench/cache_http.py --baseline /tmp/cache-before
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _httpload import Figures, free_port, line, median, process, wait_http, wrk

PYTHON = sys.executable
WEBDIS_PORT = 7379
WARM_UP_SECONDS = 2
SHIPPED = "cache"
LOG_OFF = "cache, access log off"


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    method: str = "GET"
    token: str | None = None


@dataclass(frozen=True)
class Service:
    """One way of serving the cache: a command, the settings it adds, where it runs."""

    name: str
    command: list[str]
    settings: dict[str, str]
    cwd: Path | None = None


def serve_minimal(port: int, redis_url: str) -> None:
    import contextlib as _contextlib

    import uvicorn
    from fastapi import FastAPI, Response
    from redis.asyncio import Redis

    @_contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        app.state.redis = Redis.from_url(redis_url)
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/get/{key}")
    async def get(key: str) -> Response:
        return Response(await app.state.redis.get(key), media_type="application/octet-stream")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def redis_cli(url: str, *args: str, stdin: bytes | None = None) -> str:
    parts = urlsplit(url)
    db = (parts.path or "/0").strip("/") or "0"
    command = ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    result = subprocess.run(
        [*command, "-n", db, *args], input=stdin, capture_output=True, check=True
    )
    return result.stdout.decode().strip()


def run_wrk(target: Target, args: argparse.Namespace, body: Path) -> Figures:
    return wrk(
        target.url,
        connections=args.connections,
        duration=args.duration,
        threads=args.threads,
        headers=[f"Authorization: Bearer {target.token}"] if target.token else [],
        script=body if target.method == "PUT" else None,
        label=f"{target.name} {target.method}",
    )


def redis_benchmark(url: str, args: argparse.Namespace) -> dict[str, Figures]:
    parts = urlsplit(url)
    db = (parts.path or "/0").strip("/") or "0"
    command = ["redis-benchmark", "-h", parts.hostname or "127.0.0.1"]
    command += ["-p", str(parts.port or 6379), "--dbnum", db, "-t", "set,get"]
    command += ["-c", str(args.connections), "-n", str(args.ceiling_requests)]
    command += ["-d", str(args.value_bytes), "--csv"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {}
    for row in output.splitlines()[1:]:
        test, rps, _avg, _min, p50, _p95, p99, _max = (f.strip('"') for f in row.split(","))
        figures[test] = Figures(float(rps), float(p50), float(p99))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 6))
    parser.add_argument("--duration", type=int, default=10, choices=range(1, 31))
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--ceiling-requests", type=int, default=300_000)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("OUTRIGGER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also serve the cache from this copy of the repository (another revision)",
    )
    parser.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_minimal:
        serve_minimal(args.serve_minimal, args.redis_url)
        return
    for tool in ("wrk", "redis-benchmark", "redis-cli", "webdis"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y wrk webdis redis-tools")
    run(args)


def services(args: argparse.Namespace) -> list[Service]:
    shipped = [PYTHON, "-m", "services.cache"]
    found = [
        Service(SHIPPED, shipped, {}),
        Service(LOG_OFF, shipped, {"OUTRIGGER_ACCESS_LOG": "off"}),
    ]
    if args.baseline is not None:
        checkout = args.baseline.resolve()
        found.append(Service(f"cache@{checkout.name}", shipped, {}, cwd=checkout))
    return found


def run(args: argparse.Namespace) -> None:
    suffix = secrets.token_hex(4)
    namespace = f"bench{suffix}"
    value = b"x" * args.value_bytes
    raw_key = f"bench:cache-http:{suffix}"
    secret = secrets.token_urlsafe(32)
    from outrigger.auth import TokenIssuer
    from outrigger.settings import Settings

    token = TokenIssuer.from_settings(Settings(jwt_secret=secret)).mint(
        "bench", ["cache:read", "cache:write"], 3600
    )
    served = services(args)
    ports = {service.name: free_port() for service in served}
    minimal_port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cache-http-"))
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        stack.callback(forget, args.redis_url, namespace, raw_key)
        redis_cli(args.redis_url, "-x", "SET", raw_key, stdin=value)
        for service in served:
            settings = {
                "OUTRIGGER_REDIS_URL": args.redis_url,
                "OUTRIGGER_JWT_SECRET": secret,
                "OUTRIGGER_PORT": str(ports[service.name]),
                "OUTRIGGER_DATA_DIR": str(workdir / f"data-{ports[service.name]}"),
                **service.settings,
            }
            stack.enter_context(process(service.command, settings, cwd=service.cwd))
        minimal = [PYTHON, __file__, "--serve-minimal", str(minimal_port)]
        stack.enter_context(process([*minimal, "--redis-url", args.redis_url]))
        stack.enter_context(process(["webdis", str(webdis_config(workdir, args.redis_url))]))
        get_path, put_path = f"/v1/cache/{namespace}/get-key", f"/v1/cache/{namespace}/put-key"
        for service in served:
            seed(f"http://127.0.0.1:{ports[service.name]}", get_path, token, value)
        wait_http(f"http://127.0.0.1:{minimal_port}/get/{raw_key}")
        wait_http(f"http://127.0.0.1:{WEBDIS_PORT}/GET/{raw_key}")
        targets = [
            *(
                Target(s.name, f"http://127.0.0.1:{ports[s.name]}{get_path}", token=token)
                for s in served
            ),
            Target("minimal", f"http://127.0.0.1:{minimal_port}/get/{raw_key}"),
            Target("webdis", f"http://127.0.0.1:{WEBDIS_PORT}/GET/{raw_key}"),
            Target(SHIPPED, f"http://127.0.0.1:{ports[SHIPPED]}{put_path}?ttl=60", "PUT", token),
            Target("webdis", f"http://127.0.0.1:{WEBDIS_PORT}/SET/{raw_key}-put", "PUT"),
        ]
        results = measure(targets, args, put_script(workdir, args.value_bytes))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report(results, [service.name for service in served])


def seed(base: str, path: str, token: str, value: bytes) -> None:
    """Waits for a cache service to answer, then stores the entry the GETs read."""
    wait_http(f"{base}/healthz")
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(
        f"{base}{path}?ttl=3600", data=value, method="PUT", headers=headers
    )
    urllib.request.urlopen(request, timeout=5).close()


def webdis_config(workdir: Path, redis_url: str) -> Path:
    """Webdis on 127.0.0.1:7379 in the foreground, on the same Redis database."""
    parts = urlsplit(redis_url)
    config = {
        "redis_host": parts.hostname or "127.0.0.1",
        "redis_port": parts.port or 6379,
        "http_host": "127.0.0.1",
        "http_port": WEBDIS_PORT,
        "database": int((parts.path or "/0").strip("/") or 0),
        "threads": 2,
        "daemonize": False,
        "verbosity": 0,
        "logfile": str(workdir / "webdis.log"),
    }
    path = workdir / "webdis.json"
    path.write_text(json.dumps(config))
    return path


def put_script(workdir: Path, size: int) -> Path:
    path = workdir / "put.lua"
    path.write_text(
        f'wrk.method = "PUT"\nwrk.body = string.rep("x", {size})\n'
        'wrk.headers["Content-Type"] = "application/octet-stream"\n'
    )
    return path


def measure(
    targets: list[Target], args: argparse.Namespace, body: Path
) -> dict[str, list[Figures]]:
    """Every target once per round, then the ceiling; returns every run.

    Each target first gets a warm-up run (not recorded). The order of the targets turns by one
    every round, so that no target always runs first (after redis-benchmark) or last.
    """
    results: dict[str, list[Figures]] = {}
    print(
        f"{args.rounds} rounds x {args.duration} s per target, {args.connections} connections, "
        f"{args.value_bytes}-byte values, Redis {args.redis_url}"
    )
    warm_up = argparse.Namespace(**{**vars(args), "duration": WARM_UP_SECONDS})
    for target in targets:
        run_wrk(target, warm_up, body)
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}")
        turn = round_ % len(targets)
        ordered = targets[turn:] + targets[:turn]
        runs = [(f"{t.name} {t.method}", run_wrk(t, args, body)) for t in ordered]
        ceiling = redis_benchmark(args.redis_url, args)
        runs += [(f"redis-benchmark {test}", ceiling[test]) for test in ("GET", "SET")]
        for name, figures in runs:
            results.setdefault(name, []).append(figures)
            print(line(name, figures))
    return results


def forget(url: str, namespace: str, raw_key: str) -> None:
    """Deletes every key the run created: the entries, the raw keys, redis-benchmark's key."""
    keys = redis_cli(url, "--scan", "--pattern", f"*{{{namespace}}}*").split()
    redis_cli(url, "DEL", raw_key, f"{raw_key}-put", "key:__rand_int__", *keys)


def report(results: dict[str, list[Figures]], served: list[str]) -> None:
    medians = {name: median(runs) for name, runs in results.items()}
    print("\nmedians of the rounds, and the worst round's p99")
    print("| target | req/s | p50 ms | p99 ms | worst p99 ms |\n|---|---:|---:|---:|---:|")
    for name, figures in medians.items():
        print(
            f"| {name} | {figures.rps:,.0f} | {figures.p50_ms:.2f} | {figures.p99_ms:.2f} "
            f"| {figures.worst_p99_ms:.2f} |"
            + (f" {figures.errors} non-2xx" if figures.errors else "")
        )
    print(
        "\nratios of GET req/s, round by round (target: cache >= 1.5x minimal, p99 <= 20 ms):"
        " the median of the rounds' ratios, and their range"
    )
    pairs = [(name, other) for name in served for other in ("minimal", "webdis")]
    pairs += [(SHIPPED, name) for name in served[1:]]
    for name, other in pairs:
        ratios = sorted(
            mine.rps / theirs.rps
            for mine, theirs in zip(results[f"{name} GET"], results[f"{other} GET"], strict=True)
        )
        print(
            f"  {name} / {other}: {statistics.median(ratios):.2f}x "
            f"({ratios[0]:.2f}-{ratios[-1]:.2f})"
        )


if __name__ == "__main__":
    main()
