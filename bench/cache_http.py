"""GET and PUT over HTTP at 50 connections: the cache service beside its peer and its ceiling.

In one run, in interleaved rounds, with the same load tool (`wrk -c 50 -t 2 -d 10s --latency`)
against every HTTP target, all on the same Redis:

- `cache`: `outrigger serve cache` (1 uvicorn worker, uvloop + httptools, JWT on every request,
  JSON access log to /dev/null, bus in memory), GET of a 100-byte entry and PUT of one;
- `cache+kit`: the same service with the two kit changes the report proposes applied in-process
  (verified tokens memoized until they expire; no access-log line for 2xx/3xx answers);
- `minimal`: a bare FastAPI app doing one `redis.asyncio` GET per request (served by this script);
- `webdis`: the Debian `webdis` (GET /GET/<key>, PUT /SET/<key>), started here on 127.0.0.1:7379
  and stopped by PID;
- `redis-benchmark -t set,get -c 50` on the same Redis: the ceiling.

Prints each round, then medians and the ratios the issue asks for (cache GET vs minimal, vs
Webdis, vs the ceiling). Bounded: at most 5 rounds of at most 30 s per target.

    .venv/bin/python bench/cache_http.py                 # 3 rounds x 10 s
    .venv/bin/python bench/cache_http.py --rounds 5 --duration 15
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
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
NAMESPACE = "bench"


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    method: str = "GET"
    token: str | None = None


# --- the minimal app and the service with the proposed kit changes, served by this script ---


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


def serve_cache_with_proposed_kit() -> None:
    """`outrigger serve cache` with the kit changes named in `CACHE_HTTP_KIT_CHANGES` (`tokens`,
    `log`) applied in this process only."""
    import importlib
    import logging
    import time as _time

    from outrigger.auth import tokens
    from outrigger.cli import main

    serve = importlib.import_module("outrigger.telemetry")

    verify = tokens.TokenVerifier.verify
    verified: dict[tuple[int, str], tuple[object, float]] = {}

    def memoized(self: tokens.TokenVerifier, token: str | None) -> object:
        found = verified.get((id(self), token or ""))
        if found is not None and found[1] > _time.time():
            return found[0]
        principal = verify(self, token)
        if len(verified) > 10_000:
            verified.clear()
        verified[(id(self), token or "")] = (principal, float(principal.claims["exp"]))
        return principal

    changes = os.environ.get("CACHE_HTTP_KIT_CHANGES", "tokens,log").split(",")
    if "tokens" in changes:
        tokens.TokenVerifier.verify = memoized
    configure = serve.configure_logging

    def quiet_successes(service: str, level: str = "INFO") -> None:
        configure(service, level)
        logging.getLogger("outrigger.http").setLevel(logging.WARNING)

    if "log" in changes:
        serve.configure_logging = quiet_successes
    main(["serve", "cache"])


# --- running things ---------------------------------------------------------------------


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
    command += [
        "-c",
        str(args.connections),
        "-n",
        str(args.ceiling_requests),
        "-d",
        str(args.value_bytes),
        "--csv",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {}
    for row in output.splitlines()[1:]:
        test, rps, _avg, _min, p50, _p95, p99, _max = (f.strip('"') for f in row.split(","))
        figures[test] = Figures(float(rps), float(p50), float(p99))
    return figures


# --- the benchmark ---------------------------------------------------------------------


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
        "--kit-breakdown",
        action="store_true",
        help="also measure GET with each proposed kit change alone",
    )
    parser.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--serve-cache-with-proposed-kit", action="store_true", help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_minimal:
        serve_minimal(args.serve_minimal, args.redis_url)
        return
    if args.serve_cache_with_proposed_kit:
        serve_cache_with_proposed_kit()
        return
    for tool in ("wrk", "redis-benchmark", "redis-cli", "webdis"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y wrk webdis redis-tools")
    run(args)


KIT_VARIANTS = {"cache+kit": "tokens,log", "cache+tokens": "tokens", "cache+quietlog": "log"}


def run(args: argparse.Namespace) -> None:
    suffix = secrets.token_hex(4)
    value = b"x" * args.value_bytes
    raw_key, prefix = f"bench:cache-http:{suffix}", f"ocbench-{suffix}"
    secret = secrets.token_urlsafe(32)
    variants = list(KIT_VARIANTS) if args.kit_breakdown else ["cache+kit"]
    ports = {name: free_port() for name in ("cache", *variants, "minimal")}
    service_env = {
        "OUTRIGGER_REDIS_URL": args.redis_url,
        "OUTRIGGER_AMQP_URL": "memory://",
        "OUTRIGGER_JWT_SECRET": secret,
        "OUTRIGGER_CACHE_KEY_PREFIX": prefix,
    }
    from outrigger.auth import TokenIssuer
    from outrigger.settings import Settings

    token = TokenIssuer.from_settings(Settings(jwt_secret=secret)).mint(
        "bench", ["cache:read", "cache:write"], 3600
    )
    redis_cli(args.redis_url, "-x", "SET", raw_key, stdin=value)
    redis_cli(args.redis_url, "-x", "SET", "key:__rand_int__", stdin=value)
    workdir = Path(tempfile.mkdtemp(prefix="cache-http-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        stack.callback(redis_cli, args.redis_url, "DEL", raw_key, f"{raw_key}-put")
        stack.callback(redis_cli, args.redis_url, "DEL", "key:__rand_int__")
        stack.callback(forget_prefix, args.redis_url, prefix)
        outrigger = str(Path(PYTHON).parent / "outrigger")
        env = {**service_env, "OUTRIGGER_PORT": str(ports["cache"])}
        stack.enter_context(process([outrigger, "serve", "cache"], env))
        for name in variants:
            env = {**service_env, "OUTRIGGER_PORT": str(ports[name])}
            env["CACHE_HTTP_KIT_CHANGES"] = KIT_VARIANTS[name]
            stack.enter_context(process([PYTHON, __file__, "--serve-cache-with-proposed-kit"], env))
        minimal = [PYTHON, __file__, "--serve-minimal", str(ports["minimal"])]
        stack.enter_context(process([*minimal, "--redis-url", args.redis_url]))
        stack.enter_context(process(["webdis", str(webdis_config(workdir, args.redis_url))]))
        for name in ("cache", *variants):
            seed(f"http://127.0.0.1:{ports[name]}", token, value)
        wait_http(f"http://127.0.0.1:{ports['minimal']}/get/{raw_key}")
        wait_http(f"http://127.0.0.1:{WEBDIS_PORT}/GET/{raw_key}")
        targets = [
            *(
                Target(name, f"http://127.0.0.1:{ports[name]}{GET_PATH}", token=token)
                for name in ("cache", *variants)
            ),
            Target("minimal", f"http://127.0.0.1:{ports['minimal']}/get/{raw_key}"),
            Target("webdis", f"http://127.0.0.1:{WEBDIS_PORT}/GET/{raw_key}"),
            *(
                Target(name, f"http://127.0.0.1:{ports[name]}{PUT_PATH}", "PUT", token)
                for name in ("cache", "cache+kit")
            ),
            Target("webdis", f"http://127.0.0.1:{WEBDIS_PORT}/SET/{raw_key}-put", "PUT"),
        ]
        report(measure(targets, args, put_script(workdir, args.value_bytes)))


GET_PATH = f"/v1/cache/{NAMESPACE}/get-key"
PUT_PATH = f"/v1/cache/{NAMESPACE}/put-key?ttl=60"
WEBDIS_PORT = 7379


def seed(base: str, token: str, value: bytes) -> None:
    """Waits for a cache service to answer, then stores the entry the GETs read."""
    wait_http(f"{base}/healthz")
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(
        f"{base}{GET_PATH}?ttl=3600", data=value, method="PUT", headers=headers
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
    """Every target once per round, in the same order, then the ceiling; returns every run."""
    results: dict[str, list[Figures]] = {}
    print(
        f"{args.rounds} rounds x {args.duration} s per target, {args.connections} connections, "
        f"{args.value_bytes}-byte values, Redis {args.redis_url}"
    )
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}")
        runs = [(f"{t.name} {t.method}", run_wrk(t, args, body)) for t in targets]
        ceiling = redis_benchmark(args.redis_url, args)
        runs += [(f"redis-benchmark {test}", ceiling[test]) for test in ("GET", "SET")]
        for name, figures in runs:
            results.setdefault(name, []).append(figures)
            print(line(name, figures))
    return results


def forget_prefix(url: str, prefix: str) -> None:
    keys = redis_cli(url, "--scan", "--pattern", f"{prefix}:*").split()
    if keys:
        redis_cli(url, "DEL", *keys)


def report(results: dict[str, list[Figures]]) -> None:
    medians = {name: median(runs) for name, runs in results.items()}
    print("\nmedians")
    print("| target | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for name, figures in medians.items():
        print(
            f"| {name} | {figures.rps:,.0f} | {figures.p50_ms:.2f} | {figures.p99_ms:.2f} |"
            + (f" {figures.errors} non-2xx" if figures.errors else "")
        )
    get = medians["cache GET"]
    print("\nratios of cache GET (target: >= 1.5x minimal, p99 <= 20 ms)")
    for other in ("minimal GET", "webdis GET", "redis-benchmark GET"):
        print(f"  cache GET / {other}: {get.rps / medians[other].rps:.2f}x")
    for name in ("cache+tokens GET", "cache+quietlog GET"):
        if name in medians:
            print(f"  {name} / minimal GET: {medians[name].rps / medians['minimal GET'].rps:.2f}x")
    kit = medians["cache+kit GET"]
    print(
        f"  cache+kit GET / minimal GET: {kit.rps / medians['minimal GET'].rps:.2f}x "
        f"(p99 {kit.p99_ms:.1f} ms)"
    )


if __name__ == "__main__":
    main()
