"""Database access: async SQLAlchemy engine, unit of work, readiness, query metrics."""

from outrigger.db.database import Database, translate_errors
from outrigger.db.engine import QUERY_DURATION, SQLITE_BEGIN, build_engine

__all__ = ["QUERY_DURATION", "SQLITE_BEGIN", "Database", "build_engine", "translate_errors"]
