"""Database access: the async SQLAlchemy engine with its unit of work, the psycopg pool for
hot paths, dedicated connections, SQLite transactions, session timeouts, readiness probes, query
metrics, errors."""

from outrigger.db.database import Database, translate_errors
from outrigger.db.engine import QUERY_DURATION, SQLITE_BEGIN, build_engine
from outrigger.db.pool import Pool, Probe
from outrigger.db.postgres import Timeouts, connect, conninfo, session_url, translated
from outrigger.db.sqlite import SqliteTransactions

__all__ = [
    "QUERY_DURATION",
    "SQLITE_BEGIN",
    "Database",
    "Pool",
    "Probe",
    "SqliteTransactions",
    "Timeouts",
    "build_engine",
    "connect",
    "conninfo",
    "session_url",
    "translate_errors",
    "translated",
]
