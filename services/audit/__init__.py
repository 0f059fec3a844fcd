"""The audit service (arrives with its issue)."""
