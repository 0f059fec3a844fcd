"""What the routes work with: the use cases (built by `app.py`), the caller, a plugin's name."""

from typing import Annotated

from fastapi import Depends, Path, Request

from outrigger.auth import Principal, Scopes, require_scope
from services.plugin_executor.domain import NAME_PATTERN
from services.plugin_executor.usecases import JobService, PluginService


# `async def`, so FastAPI does not run it in a worker thread (see the event store's context)
async def service_of(request: Request) -> PluginService:
    service: PluginService = request.app.state.plugins
    return service


async def jobs_of(request: Request) -> JobService:
    jobs: JobService = request.app.state.jobs
    return jobs


Service = Annotated[PluginService, Depends(service_of)]
Jobs = Annotated[JobService, Depends(jobs_of)]
Runner = Annotated[Principal, require_scope(Scopes.PLUGINS_RUN)]
Admin = Annotated[Principal, require_scope(Scopes.PLUGINS_ADMIN)]
PluginName = Annotated[
    str,
    Path(
        description="A loaded plugin's name (`GET /v1/plugins` lists them): 1-64 of "
        "`a-z 0-9 _ -`, starting with a letter or digit.",
        pattern=NAME_PATTERN,
    ),
]
