"""The SQL of the PostgreSQL adapter (schema `audit`, see the migration).

Batches travel as arrays and come back out of `unnest`: one statement, one round trip, whatever
the batch's size. The arrays go in binary (`%b`): no quoting or escaping, on either side.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

# --- an append, in its transaction -------------------------------------------------------------

# Sorted, so that two appends creating trees never wait on each other in opposite orders.
ADD_TREES = (
    "INSERT INTO audit.trees (tenant) SELECT t FROM unnest(%s::text[]) AS t ORDER BY t "
    "ON CONFLICT DO NOTHING"
)
# One writer per tenant: locked in tenant order (the LockRows step runs above the sort).
LOCK_TREES = (
    "SELECT tenant, size FROM audit.trees WHERE tenant = ANY(%s::text[]) ORDER BY tenant FOR UPDATE"
)
STORED_KEYS = (
    "SELECT k.source, k.id, k.tenant, k.idx, k.leaf_hash FROM audit.record_keys k "
    "JOIN unnest(%b::text[], %b::text[]) AS b(source, id) ON k.source = b.source AND k.id = b.id"
)
NODES = (
    "SELECT n.tenant, n.level, n.idx, n.hash FROM audit.nodes n "
    "JOIN unnest(%s::text[], %s::smallint[], %s::bigint[]) AS w(tenant, level, idx) "
    "ON n.tenant = w.tenant AND n.level = w.level AND n.idx = w.idx"
)
WRITE = """
WITH records AS (
  INSERT INTO audit.records (tenant, idx, source, id, type, actor, resource, outcome, time,
                             recorded_at, body, leaf_hash)
  SELECT * FROM unnest(%(tenant)b::text[], %(idx)b::bigint[], %(source)b::text[], %(id)b::text[],
                       %(type)b::text[], %(actor)b::text[], %(resource)b::text[],
                       %(outcome)b::text[], %(time)b::timestamptz[], %(recorded_at)b::timestamptz[],
                       %(body)b::bytea[], %(leaf_hash)b::bytea[])
), keys AS (
  INSERT INTO audit.record_keys (source, id, tenant, idx, leaf_hash)
  SELECT * FROM unnest(%(source)b::text[], %(id)b::text[], %(tenant)b::text[], %(idx)b::bigint[],
                       %(leaf_hash)b::bytea[])
), nodes AS (
  INSERT INTO audit.nodes (tenant, level, idx, hash)
  SELECT * FROM unnest(%(node_tenant)b::text[], %(node_level)b::smallint[],
                       %(node_idx)b::bigint[], %(node_hash)b::bytea[])
)
UPDATE audit.trees t SET size = g.size
  FROM unnest(%(tree)b::text[], %(size)b::bigint[]) AS g(tenant, size)
 WHERE t.tenant = g.tenant
"""

# --- partitions ----------------------------------------------------------------------------------

PARTITION_PREFIX = "records_"
PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'audit.records'::regclass"
)


def month_name(month: tuple[int, int]) -> str:
    year, number = month
    return f"{PARTITION_PREFIX}{year:04d}_{number:02d}"


def month_start(month: tuple[int, int]) -> datetime:
    return datetime(month[0], month[1], 1, tzinfo=UTC)


def next_month(month: tuple[int, int]) -> tuple[int, int]:
    year, number = month
    return (year + 1, 1) if number == 12 else (year, number + 1)


def create_partition(month: tuple[int, int]) -> str:
    """The DDL of the month's partition (names and bounds from integers only)."""
    start, end = month_start(month), month_start(next_month(month))
    return (
        f"CREATE TABLE IF NOT EXISTS audit.{month_name(month)} PARTITION OF audit.records "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


# Next month's partition is made ahead only if the table is free now.
AHEAD_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '100ms'"


# --- retention (one transaction) ----------------------------------------------------------------

LOCK_ALL_TREES = "SELECT tenant FROM audit.trees ORDER BY tenant FOR UPDATE"


def count(partition: str) -> str:
    return f"SELECT count(*) FROM audit.{partition}"


def highest(partition: str) -> str:
    """Each tenant's highest index in the partition: one probe of its index per tenant."""
    return (
        "SELECT t.tenant, m.idx FROM audit.trees t CROSS JOIN LATERAL "
        f"(SELECT max(r.idx) AS idx FROM audit.{partition} r WHERE r.tenant = t.tenant) m "
        "WHERE m.idx IS NOT NULL"
    )


def drop_partition(partition: str) -> str:
    return f"DROP TABLE audit.{partition}"


RETAIN = (
    "UPDATE audit.trees t SET retained_from = greatest(t.retained_from, d.retained_from) "
    "FROM unnest(%s::text[], %s::bigint[]) AS d(tenant, retained_from) WHERE t.tenant = d.tenant"
)

# --- reads -------------------------------------------------------------------------------------

# The tree's size and the hashes of its `merkle.root_nodes`, largest first, in one snapshot.
_HEAD = """
SELECT t.tenant, t.size,
       ARRAY(SELECT n.hash FROM generate_series(62, 0, -1) AS l(level)
               JOIN audit.nodes n
                 ON n.tenant = t.tenant AND n.level = l.level AND n.idx = (t.size >> l.level) - 1
              WHERE (t.size >> l.level) & 1 = 1
              ORDER BY l.level DESC)
  FROM audit.trees t
"""
HEAD = _HEAD + " WHERE t.tenant = %s"
HEADS = _HEAD + " WHERE t.size > 0 ORDER BY t.tenant"

RETAINED_FROM = "SELECT retained_from FROM audit.trees WHERE tenant = %s"

FIND = (
    "SELECT r.idx, r.body FROM audit.record_keys k JOIN audit.records r "
    "ON r.tenant = k.tenant AND r.idx = k.idx AND r.source = k.source AND r.id = k.id "
    "WHERE k.id = %(id)s AND (%(source)s::text IS NULL OR k.source = %(source)s) "
    "ORDER BY k.source, r.tenant"
)

_FILTERS = {
    "type": "type = %(type)s",
    "actor": "actor = %(actor)s",
    "resource": "resource = %(resource)s",
    "outcome": "outcome = %(outcome)s",
    "since": "time >= %(since)s",
    "until": "time < %(until)s",
    "before": "idx < %(before)s",
}
_WINDOW_KEYSET = "(time, idx) < (%(before_time)s, %(before)s)"


def _query(given: tuple[str, ...]) -> str:
    window = "since" in given or "until" in given
    filters = "".join(
        f" AND {_WINDOW_KEYSET if window and name == 'before' else _FILTERS[name]}"
        for name in given
    )
    order = "time DESC, idx DESC" if window else "idx DESC"
    return (
        f"SELECT idx, body FROM audit.records WHERE tenant = %(tenant)s{filters} "
        f"ORDER BY {order} LIMIT %(limit)s"
    )


# A keyset page, newest first, by the filters given (names of `_FILTERS`, in that order): by
# index, or in a time window by (time, index), its cursor both (a row comparison, which the
# index on (tenant, time DESC, idx DESC) serves as one range).
QUERIES = {
    given: _query(given)
    for count in range(len(_FILTERS) + 1)
    for given in itertools.combinations(_FILTERS, count)
}

RECORDS = (
    "SELECT idx, body FROM audit.records WHERE tenant = %s AND idx >= %s AND idx < %s "
    "ORDER BY idx, body"
)

# Unordered: the adapter sorts the rows by index (a sort here would spill the bodies to disk).
SCAN = """
SELECT coalesce(n.idx, r.idx) AS idx, n.hash, r.body, r.type, r.actor, r.resource, r.outcome,
       r.time
  FROM (SELECT idx, hash FROM audit.nodes
         WHERE tenant = %(tenant)s AND level = 0 AND idx >= %(first)s AND idx < %(end)s) n
  FULL JOIN (SELECT idx, body, type, actor, resource, outcome, time FROM audit.records
              WHERE tenant = %(tenant)s AND idx >= %(first)s AND idx < %(end)s) r
    ON r.idx = n.idx
"""

# --- checkpoints -------------------------------------------------------------------------------

# Levels 1-53: indexes stay below 2**53. One range of the primary key per level: `OFFSET 0`
# keeps the subquery from being flattened into a join the planner answers with a scan of every
# node of the tenant (the bounds depend on the level, so it cannot estimate them).
COMPLETED_NODES = """
SELECT l.level, n.idx, n.hash
  FROM generate_series(1, 53) AS l(level)
 CROSS JOIN LATERAL (SELECT idx, hash FROM audit.nodes
                      WHERE tenant = %(tenant)s AND level = l.level
                        AND idx >= (%(first)s::bigint >> l.level)
                        AND idx < (%(end)s::bigint >> l.level)
                     OFFSET 0) n
"""
_CHECKPOINT = "SELECT tenant, size, root, issued_at, note FROM audit.checkpoints WHERE tenant = %s"
ADD_CHECKPOINT = (
    "INSERT INTO audit.checkpoints (tenant, size, root, issued_at, note) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
LATEST_CHECKPOINT = _CHECKPOINT + " ORDER BY size DESC LIMIT 1"
CHECKPOINT_COVERING = _CHECKPOINT + " AND size > %s ORDER BY size LIMIT 1"
CHECKPOINTS_AFTER = _CHECKPOINT + " AND size > %s ORDER BY size"

QUERY_NAMES = {
    ADD_TREES: "audit_add_trees",
    LOCK_TREES: "audit_lock_trees",
    STORED_KEYS: "audit_stored_keys",
    NODES: "audit_nodes",
    WRITE: "audit_write",
    HEAD: "audit_head",
    HEADS: "audit_heads",
    FIND: "audit_find",
    RECORDS: "audit_records",
    SCAN: "audit_scan",
    COMPLETED_NODES: "audit_completed_nodes",
    LATEST_CHECKPOINT: "audit_latest_checkpoint",
    CHECKPOINT_COVERING: "audit_checkpoint_covering",
    **dict.fromkeys(QUERIES.values(), "audit_query"),
}
