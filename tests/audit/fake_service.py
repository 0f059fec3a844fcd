"""A stand-in for the audit service's HTTP API, in memory, answering the shapes the brief fixes
(`/v1/records`, proofs, checkpoints, verify, export): enough to test the SDK and the CLI on
their own. It checks nothing the real service checks beyond what those tests need."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from outrigger import errors, merkle
from outrigger.notes import NoteSigner
from outrigger.settings import Settings
from tests.audit.export_support import ORIGIN, Log


def problem(error: errors.OutriggerError, request: Request) -> JSONResponse:
    return JSONResponse(
        error.problem(request.url.path),
        status_code=error.status,
        headers=error.headers,
        media_type="application/problem+json",
    )


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FakeAudit:
    def __init__(self) -> None:
        self.signer = NoteSigner.generate(ORIGIN)
        self.logs: dict[str, Log] = {}
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}  # (source, id) -> record out
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.seen: list[Request] = []
        self.bodies: list[bytes] = []  # of the writes
        self.mismatch: dict[str, Any] | None = None
        self.app = FastAPI()
        self.app.state.settings = Settings()  # what `outrigger.testing.serving` reads
        self.app.middleware("http")(self._record)
        add = self.app.router.add_api_route
        add("/v1/records", self.post_records, methods=["POST"])
        add("/v1/records", self.query, methods=["GET"])
        add("/v1/records/{path:path}", self.get_record, methods=["GET"])
        add("/v1/records/{path:path}", self.reveal, methods=["POST"])
        add("/v1/proofs/inclusion", self.inclusion, methods=["GET"])
        add("/v1/proofs/consistency", self.consistency, methods=["GET"])
        add("/v1/checkpoints/latest", self.latest, methods=["GET"])
        add("/v1/checkpoints", self.issue, methods=["POST"])
        add("/v1/verify", self.verify, methods=["GET"])
        add("/v1/export", self.export, methods=["GET"])

    async def _record(self, request: Request, call_next: Any) -> Any:
        self.seen.append(request)
        if request.headers.get("Authorization") != "Bearer fake-token":
            return problem(errors.Unauthorized("bad token signature"), request)
        return await call_next(request)

    def log(self, tenant: str) -> Log:
        return self.logs.setdefault(tenant, Log(tenant, self.signer))

    def add(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        key = (record["source"], record["id"])
        if key in self.stored:
            return self.stored[key], True
        tenant = record.get("tenant", "default")
        log = self.log(tenant)
        now = datetime.now(UTC)
        stored = {
            "outcome": "success",
            "data": {},
            "sensitive": [],
            "subject": None,
            "time": stamp(now),
            **record,
            "tenant": tenant,
            "recorded_at": stamp(now),
        }
        body = orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)
        log.append(body)
        out = {**stored, "index": len(log.leaves) - 1, "leaf_hash": merkle.leaf_hash(body).hex()}
        self.stored[key] = out
        return out, False

    def checkpoint(self, tenant: str) -> dict[str, Any]:
        self.checkpoints[tenant] = self.log(tenant).checkpoint(datetime.now(UTC))
        return self.checkpoints[tenant]

    async def post_records(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        body = orjson.loads(self.bodies[-1])
        records = body.get("records", [body])
        added = [self.add(record) for record in records]
        receipts = []
        for out, duplicate in added:
            receipt = {key: out[key] for key in ("id", "source", "tenant", "index", "leaf_hash")}
            receipts.append({**receipt, "duplicate": duplicate})
        for tenant in {out["tenant"] for out, _ in added}:
            self.checkpoint(tenant)
        for receipt in receipts:
            receipt["checkpoint"] = self.checkpoints[receipt["tenant"]]
        status = 200 if all(duplicate for _, duplicate in added) else 201
        return JSONResponse({"receipts": receipts}, status_code=status)

    async def query(self, request: Request) -> dict[str, Any]:
        params = request.query_params
        tenant, limit = params.get("tenant", "default"), int(params.get("limit", "100"))
        before = int(params["cursor"]) if "cursor" in params else None
        found = sorted(
            (
                out
                for out in self.stored.values()
                if out["tenant"] == tenant
                and (before is None or out["index"] < before)
                and all(out[name] == params[name] for name in ("type", "actor") if name in params)
                and ("from" not in params or out["time"] >= stamp(_time(params["from"])))
            ),
            key=lambda out: -out["index"],
        )
        page = found[:limit]
        more = len(found) > limit
        return {"records": page, "next_cursor": str(page[-1]["index"]) if more else None}

    async def get_record(self, path: str, request: Request) -> Response:
        for (source, id_), out in self.stored.items():
            if id_ == path and request.query_params.get("source", source) == source:
                return JSONResponse(out)
        return problem(errors.NotFound(f"no audit record {path!r}"), request)

    async def reveal(self, path: str, request: Request) -> Response:
        id_ = path.removesuffix(":reveal")
        reason = orjson.loads(await request.body())["reason"]
        for (_, stored_id), out in self.stored.items():
            if stored_id == id_:
                return JSONResponse({**out, "data": {**out["data"], "revealed_for": reason}})
        return problem(errors.NotFound(f"no audit record {id_!r}"), request)

    async def inclusion(self, tenant: str, index: int, tree_size: int | None = None) -> Any:
        log = self.log(tenant)
        size = tree_size if tree_size is not None else self.checkpoints[tenant]["tree_size"]
        leaf = merkle.leaf_hash(log.leaves[index]).hex()
        return {
            "tenant": tenant,
            "index": index,
            "tree_size": size,
            "leaf_hash": leaf,
            "hashes": log.proof(index, size),
        }

    async def consistency(self, tenant: str, from_size: int, to_size: int) -> Any:
        hashes = self.log(tenant).consistency(from_size, to_size)
        return {"tenant": tenant, "from_size": from_size, "to_size": to_size, "hashes": hashes}

    async def latest(self, tenant: str, request: Request) -> Response:
        if tenant not in self.checkpoints:
            return problem(errors.NotFound(f"tenant {tenant!r} has no checkpoint yet"), request)
        return JSONResponse(self.checkpoints[tenant])

    async def issue(self, tenant: str) -> Response:
        return JSONResponse(self.checkpoint(tenant), status_code=201)

    async def verify(self, tenant: str) -> dict[str, Any]:
        size = len(self.log(tenant).leaves)
        return {
            "tenant": tenant,
            "tree_size": size,
            "records_checked": size,
            "retained_from": 0,
            "checkpoints_checked": 1 if tenant in self.checkpoints else 0,
            "ok": self.mismatch is None,
            "mismatch": self.mismatch,
        }

    async def export(self, tenant: str) -> StreamingResponse:
        lines = self.log(tenant).export()

        async def body() -> Any:
            for line in lines:
                yield line.encode() + b"\n"

        return StreamingResponse(body(), media_type="application/x-ndjson")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
