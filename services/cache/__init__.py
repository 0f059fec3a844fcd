"""The cache service (arrives with its issue)."""
