"""The audit log's storage: PostgreSQL (partitioned, for real) and SQLite (embedded)."""
