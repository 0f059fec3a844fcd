"""What keeps a page fast at scale on PostgreSQL, shown by the planner's own choice: a page of
a time window, narrow or wide, old or recent, first or followed by its cursor, is one range of
`(tenant, time DESC, idx DESC)` (migration `audit_0003`) read newest first, with no sort; an
unfiltered page walks `(tenant, idx DESC)`.

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
# the filters in the order of the keys of `sql.QUERIES`
FILTERS = ("type", "actor", "resource", "outcome", "since", "until", "before")


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


def _page(connection: psycopg.Connection[Any], **where: Any) -> tuple[list[int], Plan]:
    """The indexes of the page the adapter's query answers for `where`, and the plan's nodes."""
    given = tuple(name for name in FILTERS if name in where)
    query = sql.QUERIES[given]
    params = {"tenant": TENANT, "limit": 101, "before_time": None, **where}
    [[plan]] = connection.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchall()
    rows = connection.execute(query, params).fetchall()
    return [row[0] for row in rows], Plan(list(_nodes(plan[0]["Plan"])))


class Plan:
    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self.indexes = {node["Index Name"] for node in nodes if "Index Name" in node}
        self.sorted = any(node["Node Type"] in ("Sort", "Incremental Sort") for node in nodes)


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _at(n: int) -> datetime:
    return START + timedelta(seconds=n)


WINDOW_INDEX = "records_2025_01_tenant_time_idx_idx"


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (1_000, 1_500),  # narrow and old
        (0, ROWS),  # the whole tenant
        (10_000, ROWS - 10_000),  # wide, far from the newest
        (None, 5_000),  # `to` alone
        (ROWS - 50_000, None),  # `from` alone
    ],
)
def test_a_window_is_one_range_of_the_time_index_paged_by_time_and_index(
    big: psycopg.Connection[Any], since: int | None, until: int | None
) -> None:
    window = {
        **({} if since is None else {"since": _at(since)}),
        **({} if until is None else {"until": _at(until)}),
    }
    newest = (ROWS if until is None else until) - 1  # record n has time START + n seconds
    page, plan = _page(big, **window)
    assert (plan.indexes, plan.sorted) == ({WINDOW_INDEX}, False)
    assert page == list(range(newest, newest - 101, -1))
    last = page[-2]  # the adapter asks for one more than the page
    following, plan = _page(big, **window, before=last, before_time=_at(last))
    assert (plan.indexes, plan.sorted) == ({WINDOW_INDEX}, False)
    assert following == list(range(last - 1, last - 102, -1))


def test_a_window_and_another_filter_stays_on_an_index(big: psycopg.Connection[Any]) -> None:
    page, plan = _page(big, since=_at(1_000), until=_at(1_500), actor="a7")
    assert plan.indexes <= {WINDOW_INDEX, "records_2025_01_tenant_actor_idx_idx"}
    assert page == list(range(1_407, 1_000, -100))


def test_no_window_walks_the_index_newest_first(big: psycopg.Connection[Any]) -> None:
    page, plan = _page(big)
    assert (plan.indexes, plan.sorted) == ({"records_2025_01_tenant_idx_idx"}, False)
    assert page == list(range(ROWS - 1, ROWS - 102, -1))
