"""`/v1/plugins`: list the loaded plugins, reload them, run one."""

from typing import Annotated

from fastapi import APIRouter, Body

from outrigger.auth import Scopes
from outrigger.http import JsonObjectField, ServiceRoute, problem_responses
from services.plugin_executor.api.context import Admin, PluginName, Runner, Service
from services.plugin_executor.api.models import PluginsOut, RunOut

router = APIRouter(prefix="/v1", tags=["plugins"], route_class=ServiceRoute)

RUN_OUTCOMES = {
    404: "No plugin of that name is loaded.",
    422: "The input does not match the plugin's input schema (or is no JSON object): `detail` "
    "names the first failing path, `errors` each one.",
    503: "No sandboxed worker can take the run now (the queue is full, or the pool is "
    "stopping); try again after `Retry-After`.",
}


@router.get("/plugins")
async def list_plugins(service: Service, caller: Runner) -> "PluginsOut":
    """The loaded plugins with their schemas and limits; with `plugins:admin`, the folders
    that could not be loaded and why."""
    return PluginsOut.of(service.plugins(), problems=caller.has_scope(Scopes.PLUGINS_ADMIN))


@router.post("/plugins:reload")
async def reload_plugins(service: Service, caller: Admin) -> "PluginsOut":
    """Rescans the plugin folder without a restart; answers the new list and its problems."""
    return PluginsOut.of(await service.reload(caller), problems=True)


@router.post("/plugins/{name}/run", responses=problem_responses(RUN_OUTCOMES))
async def run_plugin(
    name: PluginName,
    payload: Annotated[
        JsonObjectField, Body(description="The plugin's input: a JSON object its schema accepts.")
    ],
    service: Service,
    caller: Runner,
) -> "RunOut":
    """Runs the plugin in the sandbox and answers how it ended. Whatever the plugin did (it
    raised, hit a limit, gave a result its schema refuses) is a 200 with that `reason`."""
    return RunOut.of(await service.run(caller, name, payload))
