"""What the plugin executor's API tests share: a plugin folder (the three examples and three test
plugins: one whose result breaks its output schema, one with recursive schemas, one whose
manifest is broken), the app
served by a real uvicorn server with the in-process test double as its sandbox, a client, and
the audit inbox."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import REGISTRY

from outrigger.bus import connect_bus
from outrigger.testing import AuditInbox, audit_inbox, bearer, serving, unique
from services.plugin_executor.app import build_app
from services.plugin_executor.settings import PluginSettings
from tests.plugin_executor.fake_sandbox import InProcessSandbox

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SECRET = "plugin-executor-test-secret-of-32-bytes!"
PROBLEM = "application/problem+json"
EXAMPLES = Path(__file__).resolve().parents[2] / "plugins"
RUN, ADMIN = "plugins:run", "plugins:admin"

LIAR_MANIFEST = """
name = "liar"
version = "0.1.0"
entrypoint = "liar:answer"
description = "Says its count is a number and gives a text."
input_schema = { type = "object" }

[output_schema]
type = "object"
required = ["count"]
properties = { count = { type = "integer" } }
"""
LIAR_CODE = """
def answer(payload):
    return {"count": "seven"}
"""
TREE_MANIFEST = """
name = "tree"
version = "0.1.0"
entrypoint = "tree:grow"

[input_schema]
"$ref" = "#/$defs/node"

[input_schema."$defs".node]
type = "object"
properties.depth = { type = "integer" }
properties.child = { "$ref" = "#/$defs/node" }

[output_schema]
"$ref" = "#/$defs/node"

[output_schema."$defs".node]
type = "object"
properties.child = { "$ref" = "#/$defs/node" }
"""
TREE_CODE = """
def grow(payload):
    tree = {}
    for _ in range(payload.get("depth", 0)):
        tree = {"child": tree}
    return tree
"""


def plugin_folder(root: Path) -> Path:
    """A plugin folder in `root`: the examples, `liar`, `tree` (recursive schemas) and `broken`
    (an invalid manifest)."""
    folder = root / "plugins"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, manifest, code in [
        ("liar", LIAR_MANIFEST, LIAR_CODE),
        ("tree", TREE_MANIFEST, TREE_CODE),
    ]:
        (folder / name).mkdir()
        (folder / name / "plugin.toml").write_text(manifest)
        (folder / name / f"{name}.py").write_text(code)
    (folder / "broken").mkdir()
    (folder / "broken" / "plugin.toml").write_text('name = "Broken!"\n')
    return folder


def plugin_settings(plugin_dir: Path, **overrides: Any) -> PluginSettings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "amqp_url": f"memory://{unique('bus')}",
        "access_log": "errors",
        "plugin_dir": plugin_dir,
        "data_dir": plugin_dir.parent / "data",
    }
    values.update(overrides)
    return PluginSettings(**values)


@dataclass
class Executor:
    """The service behind a real uvicorn server; `http` holds `plugins:run`."""

    url: str
    settings: PluginSettings
    sandbox: InProcessSandbox
    http: httpx.AsyncClient
    audit: AuditInbox

    def as_(self, *scopes: str, subject: str = "tester") -> dict[str, str]:
        return bearer(self.settings, *scopes, subject=subject)


@contextlib.asynccontextmanager
async def served(
    settings: PluginSettings, sandbox: InProcessSandbox | None = None
) -> AsyncIterator[Executor]:
    sandbox = sandbox or InProcessSandbox()
    async with serving(build_app(settings, sandbox=sandbox)) as url:
        bus = connect_bus(settings.amqp_url, source="tests")
        await bus.start()
        try:
            audit = await audit_inbox(bus, "plugin-executor")
            headers = bearer(settings, RUN)
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
                yield Executor(url, settings, sandbox, http, audit)
        finally:
            await bus.close()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
