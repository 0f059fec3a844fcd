"""The five services, their fixed ports, and how the kit finds one that is installed.

The kit imports no service: it finds `services.<package>.app.build_app` by name at run time,
so a service that has not landed yet is simply absent. A service's own commands are the click
group `services.<package>.cli.commands`, called `outrigger <command>`; the CLI imports it only
when that command runs.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from outrigger.errors import NotFound

if TYPE_CHECKING:
    import click
    from fastapi import FastAPI


class AppFactory(Protocol):
    def __call__(self) -> FastAPI:
        """Reads the service's settings (raising `SettingsError`) and builds its app."""
        ...


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    package: str
    port: int
    command: str | None = None  # `outrigger <command> …`, the group in services.<package>.cli

    @property
    def module(self) -> str:
        return f"services.{self.package}"

    @property
    def installed(self) -> bool:
        return self._has(f"{self.module}.app")

    @property
    def has_commands(self) -> bool:
        return self.command is not None and self._has(f"{self.module}.cli")

    def app_factory(self) -> AppFactory:
        factory: AppFactory = importlib.import_module(f"{self.module}.app").build_app
        return factory

    def commands(self) -> click.Group:
        """The service's command group (`outrigger <command>`), imported now."""
        group: click.Group = importlib.import_module(f"{self.module}.cli").commands
        return group

    @staticmethod
    def _has(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return False


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("audit", "audit", 8001, command="audit"),
    ServiceInfo("event-store", "event_store", 8002, command="events"),
    ServiceInfo("cache", "cache", 8003, command="cache"),
    ServiceInfo("notifications", "notifications", 8004, command="notifications"),
    ServiceInfo("plugin-executor", "plugin_executor", 8005, command="plugins"),
)


def service(name: str) -> ServiceInfo:
    """The service called `name` (`event-store` or `event_store`), or NotFound listing them."""
    wanted = name.replace("_", "-")
    for info in SERVICES:
        if info.name == wanted:
            return info
    known = ", ".join(info.name for info in SERVICES)
    raise NotFound(f"no service called {name!r}; the services are {known}")


def installed() -> list[ServiceInfo]:
    return [info for info in SERVICES if info.installed]
