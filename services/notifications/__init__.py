"""The notifications service (arrives with its issue)."""
