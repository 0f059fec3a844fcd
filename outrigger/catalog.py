"""The five services, their fixed ports, and how the kit finds one that is installed.

The kit imports no service: it finds `services.<package>.app.build_app` by name at run time,
so a service that has not landed yet is simply absent.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from outrigger.errors import NotFound

if TYPE_CHECKING:
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

    @property
    def module(self) -> str:
        return f"services.{self.package}"

    @property
    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(f"{self.module}.app") is not None
        except ModuleNotFoundError:
            return False

    def app_factory(self) -> AppFactory:
        factory: AppFactory = importlib.import_module(f"{self.module}.app").build_app
        return factory


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("audit", "audit", 8001),
    ServiceInfo("event-store", "event_store", 8002),
    ServiceInfo("cache", "cache", 8003),
    ServiceInfo("notifications", "notifications", 8004),
    ServiceInfo("plugin-executor", "plugin_executor", 8005),
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
