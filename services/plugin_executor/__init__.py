"""The plugin-executor service: plugins run in a sandboxed warm pool, over HTTP (port 8005)."""
