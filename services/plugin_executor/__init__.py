"""The plugin-executor service (arrives with its issue)."""
