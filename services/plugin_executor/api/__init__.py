"""The plugin executor's HTTP API under `/v1`: list and reload plugins (scopes `plugins:run`,
`plugins:admin`), run one (`plugins:run`)."""

from services.plugin_executor.api import plugins

ROUTERS = (plugins.router,)

__all__ = ["ROUTERS"]
