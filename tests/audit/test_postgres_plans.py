"""What keeps a page fast at scale on PostgreSQL, shown by the planner's own choice: a narrow
time window is found through `(tenant, time)` (migration `audit_0002`), a wide one and an
unfiltered page walk `(tenant, idx DESC)`; the page is the same, newest first, either way.

The rows (a few hundred thousand, one month's partition) are written with one `INSERT ...
SELECT` into a database of the test's own, analysed, and the adapter's query texts explained.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from outrigger.db import conninfo
from services.audit.adapters import postgres_sql as sql
from tests.conftest import POSTGRES_URL
from tests.databases import migrated_database

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.postgres

ROWS = 300_000
TENANT = "big"
START = datetime(2025, 1, 1, tzinfo=UTC)  # record n has time START + n seconds


@pytest.fixture(scope="module")
def big() -> Iterator[psycopg.Connection[Any]]:
    """A migrated database of its own holding ROWS records of TENANT (and a few of another),
    analysed; a connection to it."""
    with (
        migrated_database(POSTGRES_URL, "audit_plans") as url,
        psycopg.connect(conninfo(url), autocommit=True) as connection,
    ):
        # loaded before it is attached: attaching builds each index in one sort, the quickest
        connection.execute(
            "CREATE TABLE audit.records_2025_01 (LIKE audit.records INCLUDING CONSTRAINTS)"
        )
        connection.execute(
            "INSERT INTO audit.records_2025_01 SELECT t, g, 's', t || g, 'x.y', 'a' || g %% 100, "
            "'r', 'success', %s + g * interval '1 second', %s, '\\x7b7d', '\\x00' "
            "FROM (VALUES (%s, %s), ('small', 50)) AS n(t, rows), generate_series(0, n.rows - 1) g",
            (START, START + timedelta(days=20), TENANT, ROWS),
        )
        attach = sql.create_partition((2025, 1)).replace(
            "CREATE TABLE IF NOT EXISTS audit.records_2025_01 PARTITION OF audit.records",
            "ALTER TABLE audit.records ATTACH PARTITION audit.records_2025_01",
        )
        connection.execute(attach)
        connection.execute("ANALYZE audit.records_2025_01")
        yield connection


def _page(connection: psycopg.Connection[Any], **where: Any) -> tuple[list[int], set[str]]:
    """The indexes of the page the adapter's query answers for `where`, and the indexes its
    plan reads."""
    given = tuple(name for name in ("since", "until", "before") if name in where)
    query = sql.QUERIES[given]
    params = {"tenant": TENANT, "limit": 101, **where}
    [[plan]] = connection.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchall()
    rows = connection.execute(query, params).fetchall()
    return [row[0] for row in rows], set(_index_names(plan[0]["Plan"]))


def _index_names(node: dict[str, Any]) -> Iterator[str]:
    if "Index Name" in node:
        yield node["Index Name"]
    for child in node.get("Plans", []):
        yield from _index_names(child)


def _at(n: int) -> datetime:
    return START + timedelta(seconds=n)


def test_a_narrow_old_window_is_found_by_time_and_paged_newest_first(
    big: psycopg.Connection[Any],
) -> None:
    page, indexes = _page(big, since=_at(1_000), until=_at(1_500))
    assert indexes == {"records_2025_01_tenant_time_idx"}
    assert page == list(range(1_499, 1_398, -1))
    following, indexes = _page(big, since=_at(1_000), until=_at(1_500), before=page[-1])
    assert indexes == {"records_2025_01_tenant_time_idx"}
    assert following == list(range(1_398, 1_297, -1))


def test_a_wide_window_and_no_window_walk_the_index_newest_first(
    big: psycopg.Connection[Any],
) -> None:
    page, indexes = _page(big, since=_at(0), until=_at(ROWS))
    assert indexes == {"records_2025_01_tenant_idx_idx"}
    assert page == list(range(ROWS - 1, ROWS - 102, -1))
    page, indexes = _page(big)
    assert indexes == {"records_2025_01_tenant_idx_idx"}
    assert page == list(range(ROWS - 1, ROWS - 102, -1))
