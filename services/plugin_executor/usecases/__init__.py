"""The plugin executor's use-case room: `PluginService` lists, reloads and runs plugins."""

from services.plugin_executor.usecases.service import Catalog, PluginService, Run

__all__ = ["Catalog", "PluginService", "Run"]
