"""The SQL of the SQLite adapter (schema `audit` is an attached file; see the kit's `db`).

Times are microseconds since the Unix epoch (UTC); hashes and bodies are blobs.
"""

from __future__ import annotations

import itertools

from sqlalchemy import bindparam, text

TREES = text("SELECT tenant, size FROM audit.trees WHERE tenant IN :tenants").bindparams(
    bindparam("tenants", expanding=True)
)
SAVE_TREE = text(
    "INSERT INTO audit.trees (tenant, size) VALUES (:tenant, :size) "
    "ON CONFLICT (tenant) DO UPDATE SET size = excluded.size"
)
STORED_KEYS = text(
    "SELECT source, id, tenant, idx, leaf_hash FROM audit.record_keys WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))
# `wanted`: a JSON array of [tenant, level, index]
NODES = text(
    "SELECT n.tenant, n.level, n.idx, n.hash FROM json_each(:wanted) AS w JOIN audit.nodes AS n "
    "ON n.tenant = json_extract(w.value, '$[0]') AND n.level = json_extract(w.value, '$[1]') "
    "AND n.idx = json_extract(w.value, '$[2]')"
)
INSERT_KEY = text(
    "INSERT INTO audit.record_keys (source, id, tenant, idx, leaf_hash) "
    "VALUES (:source, :id, :tenant, :idx, :leaf_hash)"
)
INSERT_NODE = text(
    "INSERT INTO audit.nodes (tenant, level, idx, hash) VALUES (:tenant, :level, :idx, :hash)"
)
INSERT_RECORD = text(
    "INSERT INTO audit.records (tenant, idx, source, id, type, actor, resource, outcome, time, "
    "recorded_at, body, leaf_hash) VALUES (:tenant, :idx, :source, :id, :type, :actor, "
    ":resource, :outcome, :time, :recorded_at, :body, :leaf_hash)"
)

SIZE = text("SELECT size, retained_from FROM audit.trees WHERE tenant = :tenant")
SIZES = text("SELECT tenant, size FROM audit.trees WHERE size > 0 ORDER BY tenant")

FIND = text(
    "SELECT r.idx, r.body FROM audit.record_keys k JOIN audit.records r "
    "ON r.tenant = k.tenant AND r.idx = k.idx AND r.source = k.source AND r.id = k.id "
    "WHERE k.id = :id AND (:source IS NULL OR k.source = :source) ORDER BY k.source, r.tenant"
)

_FILTERS = {
    "type": "type = :type",
    "actor": "actor = :actor",
    "resource": "resource = :resource",
    "outcome": "outcome = :outcome",
    "since": "time >= :since",
    "until": "time < :until",
    "before": "idx < :before",
}
_WINDOW_KEYSET = "(time, idx) < (:before_time, :before)"


def _query(given: tuple[str, ...]) -> str:
    window = "since" in given or "until" in given
    filters = "".join(
        f" AND {_WINDOW_KEYSET if window and name == 'before' else _FILTERS[name]}"
        for name in given
    )
    order = "time DESC, idx DESC" if window else "idx DESC"
    return (
        f"SELECT idx, body FROM audit.records WHERE tenant = :tenant{filters} "
        f"ORDER BY {order} LIMIT :limit"
    )


# A keyset page, newest first, by the filters given (names of `_FILTERS`, in that order): by
# index, or in a time window by (time, index), its cursor both (a row comparison, which the
# index on (tenant, time DESC, idx DESC) serves as one range).
QUERIES = {
    given: text(_query(given))
    for count in range(len(_FILTERS) + 1)
    for given in itertools.combinations(_FILTERS, count)
}

RECORDS = text(
    "SELECT idx, body FROM audit.records WHERE tenant = :tenant AND idx >= :first "
    "AND idx < :end ORDER BY idx, body"
)
# Levels 1-53: indexes stay below 2**53.
COMPLETED_NODES = text(
    "WITH RECURSIVE l(level) AS (SELECT 1 UNION ALL SELECT level + 1 FROM l WHERE level < 53) "
    "SELECT n.level, n.idx, n.hash FROM l JOIN audit.nodes AS n "
    "ON n.tenant = :tenant AND n.level = l.level "
    "AND n.idx >= (:first >> l.level) AND n.idx < (:end >> l.level)"
)
SCAN_NODES = text(
    "SELECT idx, hash FROM audit.nodes WHERE tenant = :tenant AND level = 0 AND idx >= :first "
    "AND idx < :end ORDER BY idx"
)
SCAN_ROWS = text(
    "SELECT idx, body, type, actor, resource, outcome, time FROM audit.records "
    "WHERE tenant = :tenant AND idx >= :first AND idx < :end ORDER BY idx, body"
)

DROPPED = text(
    "SELECT tenant, max(idx), count(*) FROM audit.records WHERE recorded_at < :cutoff "
    "GROUP BY tenant"
)
DROP = text("DELETE FROM audit.records WHERE recorded_at < :cutoff")
RETAIN = text(
    "UPDATE audit.trees SET retained_from = max(retained_from, :retained_from) "
    "WHERE tenant = :tenant"
)

_CHECKPOINT = (
    "SELECT tenant, size, root, issued_at, note FROM audit.checkpoints WHERE tenant = :tenant"
)
ADD_CHECKPOINT = text(
    "INSERT INTO audit.checkpoints (tenant, size, root, issued_at, note) "
    "VALUES (:tenant, :size, :root, :issued_at, :note) ON CONFLICT DO NOTHING"
)
LATEST_CHECKPOINT = text(_CHECKPOINT + " ORDER BY size DESC LIMIT 1")
CHECKPOINT_COVERING = text(_CHECKPOINT + " AND size > :index ORDER BY size LIMIT 1")
CHECKPOINTS_AFTER = text(_CHECKPOINT + " AND size > :after ORDER BY size")
