"""`AuditClient`: records, queries, reveals, proofs, checkpoints, verification and exports of the
audit service.

    async with AuditClient("http://127.0.0.1:8001", token=token) as audit:
        receipt = await audit.record({"source": "billing", "type": "billing.invoice.voided",
                                      "actor": "ada", "action": "void", "resource": "invoice/7"})
        async for record in audit.query_all(actor="ada"):
            print(record.index, record.type)
        async for line in audit.export(tenant="default"):
            ...                              # outrigger.clients.audit_verify checks it offline

Every method returns the frozen dataclasses of `outrigger.clients.audit_models`.

`record` and `record_many` give every record without an `id` a new one before sending, so
sending the same records again is safe: the service answers a record it has (same `source` and
`id`) with its first receipt, marked `duplicate`. The client does so itself, under its retry
policy, when an answer is lost; to retry after a call has raised, pass the records with their ids.
`follow` polls for new records (there is no push of records); `export` streams NDJSON; `forget`
erases a data subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from outrigger.clients.audit_models import (
    AuditRecord,
    Checkpoint,
    ConsistencyProof,
    ExportLine,
    InclusionProof,
    Outcome,
    Receipt,
    RecordPage,
    Verification,
)
from outrigger.clients.audit_verify import read_export_line
from outrigger.clients.base import ServiceClient
from outrigger.errors import ExternalServiceError, InfrastructureError, NotFound

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping, Sequence
    from datetime import datetime

DEFAULT_TENANT = "default"
MAX_PAGE = 1000
FOLLOW_PAGE = 100
NDJSON = "application/x-ndjson, application/problem+json"


class AuditClient(ServiceClient):
    """The audit service's HTTP API (see the module docstring); every method raises the
    `outrigger.errors` class of the problem the service answered (`InvalidInput`, `NotFound`,
    `Forbidden` ...)."""

    service = "audit"

    async def record(self, record: Mapping[str, Any]) -> Receipt:
        """Records one `{id?, source, type, time?, actor, action, resource, outcome?, tenant?,
        data?, sensitive?, subject?}` (scope `audit:write`); its receipt carries a checkpoint
        that covers it."""
        receipts = await self.record_many([record])
        return receipts[0]

    async def record_many(self, records: Sequence[Mapping[str, Any]]) -> list[Receipt]:
        """Records 1-1,000 records in one request, all or nothing; one receipt per record, in
        order (a duplicate of a stored one answers that one's receipt)."""
        body = {"records": [{"id": str(uuid.uuid4()), **record} for record in records]}
        response = await self._request(
            "POST", "/v1/records", json=body, expect=(200, 201), idempotent=True
        )
        return list(self._model(_Receipts, response).receipts)

    async def query(
        self,
        tenant: str = DEFAULT_TENANT,
        *,
        record_type: str | None = None,
        actor: str | None = None,
        resource: str | None = None,
        outcome: Outcome | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RecordPage:
        """A page of the tenant's records, newest first, that match every filter given: `since`
        (inclusive) and `until` (exclusive) bound their `time`. Read on with `next_cursor`."""
        params = _filters(record_type, actor, resource, outcome, since, until)
        params.update(tenant=tenant, limit=limit)
        if cursor is not None:
            params["cursor"] = cursor
        return self._model(RecordPage, await self._request("GET", "/v1/records", params=params))

    async def query_all(
        self,
        tenant: str = DEFAULT_TENANT,
        *,
        record_type: str | None = None,
        actor: str | None = None,
        resource: str | None = None,
        outcome: Outcome | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = MAX_PAGE,
    ) -> AsyncGenerator[AuditRecord, None]:
        """Every matching record, newest first, a page of `page_size` at a time, for as long as
        the caller iterates."""
        cursor: str | None = None
        while True:
            page = await self.query(
                tenant,
                record_type=record_type,
                actor=actor,
                resource=resource,
                outcome=outcome,
                since=since,
                until=until,
                limit=page_size,
                cursor=cursor,
            )
            for record in page.records:
                yield record
            if page.next_cursor is None or not page.records:
                return
            cursor = page.next_cursor

    async def follow(
        self,
        tenant: str = DEFAULT_TENANT,
        *,
        record_type: str | None = None,
        actor: str | None = None,
        resource: str | None = None,
        outcome: Outcome | None = None,
        last: int = 10,
        interval: float = 1.0,
    ) -> AsyncGenerator[AuditRecord, None]:
        """The `last` newest matching records, oldest first, then every new one as it is
        recorded (asking every `interval` seconds), for as long as the caller iterates.

        Errors of the first request are raised (a wrong URL or token says so at once); a later
        poll that fails for the service's or the network's sake is tried again at the next
        interval, so following survives a restart of the service.
        """
        filters: dict[str, Any] = {
            "record_type": record_type,
            "actor": actor,
            "resource": resource,
            "outcome": outcome,
        }
        newest = await self.query(tenant, limit=min(max(last, 1), MAX_PAGE), **filters)
        for record in reversed(newest.records[:last]):
            yield record
        seen = newest.records[0].index if newest.records else -1
        while True:
            await asyncio.sleep(interval)
            try:
                fresh = await self._newer(tenant, seen, filters)
            except InfrastructureError:
                continue
            for record in reversed(fresh):
                yield record
            if fresh:
                seen = fresh[0].index

    async def _newer(self, tenant: str, seen: int, filters: dict[str, Any]) -> list[AuditRecord]:
        """The matching records after index `seen`, newest first."""
        fresh: list[AuditRecord] = []
        cursor: str | None = None
        while True:
            page = await self.query(tenant, limit=FOLLOW_PAGE, cursor=cursor, **filters)
            fresh.extend(record for record in page.records if record.index > seen)
            if not page.records or page.records[-1].index <= seen or page.next_cursor is None:
                return fresh
            cursor = page.next_cursor

    async def get(self, id: str, *, source: str | None = None) -> AuditRecord:
        """The record `id` (of `source`, when several sources used that id), masked; NotFound
        if there is none."""
        params = {"source": source} if source is not None else None
        response = await self._request("GET", _record_path(id), params=params)
        return self._model(AuditRecord, response)

    async def reveal(self, id: str, *, reason: str, source: str | None = None) -> AuditRecord:
        """The record `id` with its sensitive fields in clear (scope `audit:reveal`). The
        service records the reveal, with `reason`, in the same tenant's log."""
        params = {"source": source} if source is not None else None
        response = await self._request(
            "POST", f"{_record_path(id)}:reveal", params=params, json={"reason": reason}
        )
        return self._model(AuditRecord, response)

    async def forget(self, subject: str, *, tenant: str = DEFAULT_TENANT) -> None:
        """Erases the subject's sensitive fields from every record, for good (scope `admin`):
        they read `{"$erased": true, ...}` from then on, masked or revealed, and every proof
        still holds. The erasure is recorded in `tenant`'s log. Idempotent."""
        path = f"/v1/subjects/{_segment(subject)}"
        await self._request("DELETE", path, params={"tenant": tenant}, expect=(204,))

    async def inclusion_proof(
        self, index: int, *, tenant: str = DEFAULT_TENANT, tree_size: int | None = None
    ) -> InclusionProof:
        """The proof that leaf `index` is in the tenant's tree of `tree_size` (default: the
        latest checkpoint's); `audit_verify.inclusion_holds` checks it against a root."""
        params: dict[str, Any] = {"tenant": tenant, "index": index}
        if tree_size is not None:
            params["tree_size"] = tree_size
        response = await self._request("GET", "/v1/proofs/inclusion", params=params)
        return self._model(InclusionProof, response)

    async def consistency_proof(
        self, from_size: int, to_size: int | None = None, *, tenant: str = DEFAULT_TENANT
    ) -> ConsistencyProof:
        """The proof that the tenant's tree of `from_size` is a prefix of that of `to_size`
        (default: the latest checkpoint's); `audit_verify.consistency_holds` checks it."""
        params: dict[str, Any] = {"tenant": tenant, "from_size": from_size}
        if to_size is not None:
            params["to_size"] = to_size
        response = await self._request("GET", "/v1/proofs/consistency", params=params)
        return self._model(ConsistencyProof, response)

    async def latest_checkpoint(self, tenant: str = DEFAULT_TENANT) -> Checkpoint | None:
        """The tenant's latest checkpoint, or None before its first."""
        try:
            response = await self._request(
                "GET", "/v1/checkpoints/latest", params={"tenant": tenant}
            )
        except NotFound:
            return None
        return self._model(Checkpoint, response)

    async def issue_checkpoint(self, tenant: str = DEFAULT_TENANT) -> Checkpoint:
        """Has the service sign a checkpoint of the tenant's tree now (scope `audit:write`)."""
        response = await self._request(
            "POST", "/v1/checkpoints", params={"tenant": tenant}, expect=(201,), idempotent=True
        )
        return self._model(Checkpoint, response)

    async def verify(self, tenant: str = DEFAULT_TENANT) -> Verification:
        """The service recomputes the tenant's tree from its rows and checks every checkpoint:
        `ok`, or the first mismatch it found."""
        response = await self._request("GET", "/v1/verify", params={"tenant": tenant})
        return self._model(Verification, response)

    async def export(
        self,
        tenant: str = DEFAULT_TENANT,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncGenerator[ExportLine, None]:
        """The tenant's export, parsed: its latest checkpoint, then each record recorded in
        `[since, until)` with its proof against that checkpoint (see `export_ndjson`)."""
        where = f"GET {self.base_url}/v1/export"
        async with contextlib.aclosing(
            self.export_ndjson(tenant, since=since, until=until)
        ) as lines:
            async for text in lines:
                try:
                    yield read_export_line(text)
                except ValueError as exc:
                    raise ExternalServiceError(f"{where} answered {exc}") from None

    async def export_ndjson(
        self,
        tenant: str = DEFAULT_TENANT,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncGenerator[str, None]:
        """The tenant's export as the service wrote it, one JSON text per line (without its
        newline), as it arrives. An answer that breaks off raises `ExternalServiceError`, so
        a partial export is never taken for a whole one."""
        params = _filters(None, None, None, None, since, until)
        params["tenant"] = tenant
        headers = {"Accept": NDJSON}
        async with self._open("GET", "/v1/export", params=params, headers=headers) as lines:
            async for line in lines:
                if line:
                    yield line


@dataclass(frozen=True, slots=True)
class _Receipts:
    receipts: tuple[Receipt, ...]


def _record_path(id: str) -> str:
    return f"/v1/records/{_segment(id)}"


def _segment(value: str) -> str:
    """`value` as one path segment: `/` encoded, and `.` or `..` too (clients resolve them)."""
    segment = quote(value, safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return segment


def _filters(
    record_type: str | None,
    actor: str | None,
    resource: str | None,
    outcome: Outcome | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    given = {
        "type": record_type,
        "actor": actor,
        "resource": resource,
        "outcome": outcome,
        "from": since.isoformat() if since is not None else None,
        "to": until.isoformat() if until is not None else None,
    }
    return {name: value for name, value in given.items() if value is not None}
