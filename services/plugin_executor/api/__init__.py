"""The plugin executor's HTTP API under `/v1`: list and reload plugins (scopes `plugins:run`,
`plugins:admin`), run one (`plugins:run`), queue runs as jobs and follow them (`plugins:run`)."""

from services.plugin_executor.api import jobs, plugins

ROUTERS = (plugins.router, jobs.router)

__all__ = ["ROUTERS"]
