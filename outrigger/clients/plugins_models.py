"""What `PluginsClient` returns: the plugin executor's answers as dataclasses.

`PluginList`, `PluginInfo`, `PluginLimits`, `LoadProblem`, `RunResult` and `RunUsage` match the
JSON schemas `PluginsOut`, `PluginOut`, `LimitsOut`, `ProblemOut`, `RunOut` and `UsageOut` of the
service's OpenAPI document field for field (a plugin's schemas, its input and its result are
plain JSON objects). `Job` is an asynchronous run as `POST /v1/jobs` and `GET /v1/jobs/{id}`
answer it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 (pydantic reads the annotations at runtime)
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import Field

Reason: TypeAlias = Literal[
    "ok",
    "error",
    "timeout",
    "cpu_limit",
    "memory_limit",
    "output_limit",
    "killed",
    "invalid_input",
    "invalid_output",
    "sandbox_violation",
]
"""How a run ended: `ok`, or why there is no result (`error`: the plugin raised; `timeout`,
`cpu_limit`, `memory_limit`, `output_limit`: a limit stopped it; `killed`: stopped from
outside; `invalid_input`, `invalid_output`: its input or result broke the plugin's schema;
`sandbox_violation`: it tried what the sandbox forbids)."""

JobState: TypeAlias = Literal["queued", "running", "done"]
"""Where a job is: waiting for a worker, running (maybe with progress), ended (with a reason)."""

_Positive = Field(gt=0)
_NotNegative = Field(ge=0)


@dataclass(frozen=True, slots=True)
class PluginLimits:
    """One run's limits: CPU time (user and system), memory, wall-clock time, and the size of
    the result as JSON (cut and reported beyond)."""

    cpu_seconds: Annotated[float, _Positive]
    memory_mib: Annotated[int, _Positive]
    wall_seconds: Annotated[float, _Positive]
    output_kib: Annotated[int, _Positive]


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """A loaded plugin: its name, version and digest (SHA-256 of its folder, hex: a changed
    file is another plugin even under the same version), what it does, the JSON Schemas
    (2020-12) of its input and result, its limits and permissions."""

    name: str
    version: str
    digest: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    limits: PluginLimits
    permissions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoadProblem:
    """A folder of the plugin directory that the last scan could not load, and what to fix."""

    folder: str
    detail: str


@dataclass(frozen=True, slots=True)
class PluginList:
    """The loaded plugins, by name; `problems` only for a caller with `plugins:admin` (None for
    the others, empty when every folder loaded)."""

    plugins: tuple[PluginInfo, ...]
    problems: tuple[LoadProblem, ...] | None

    def get(self, name: str) -> PluginInfo | None:
        """The loaded plugin called `name`, if there is one."""
        return next((plugin for plugin in self.plugins if plugin.name == name), None)


@dataclass(frozen=True, slots=True)
class RunUsage:
    """What a run used: CPU time (user and system) and wall-clock time in seconds, peak
    resident memory in KiB."""

    cpu_s: Annotated[float, _NotNegative]
    max_rss_kib: Annotated[int, _NotNegative]
    wall_s: Annotated[float, _NotNegative]


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run of `plugin` (at `version`, `digest`) ended: `result` (valid against its output
    schema) only when `reason` is `ok`; otherwise `detail` says what went wrong (no host path)."""

    plugin: str
    version: str
    digest: str
    result: dict[str, Any] | None
    reason: Reason
    detail: str | None
    usage: RunUsage

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


@dataclass(frozen=True, slots=True)
class JobProgress:
    """The last progress a running job's plugin reported: a fraction done, and what it says."""

    progress: float
    message: str | None


@dataclass(frozen=True, slots=True)
class Job:
    """An asynchronous run of `plugin`. While `state` is `queued` or `running` it has no
    `reason`; `progress` is the plugin's last report, if it made one. Once `done`, `reason`,
    `detail`, `usage` and `result` (only with `ok`) are those of a `RunResult`. `version` is
    the plugin's version once a run began, where the service says it."""

    id: str
    plugin: str
    state: JobState
    progress: JobProgress | None
    result: dict[str, Any] | None
    reason: Reason | None
    detail: str | None
    usage: RunUsage | None
    created_at: datetime
    updated_at: datetime
    version: str | None

    @property
    def done(self) -> bool:
        return self.state == "done"

    @property
    def ok(self) -> bool:
        return self.reason == "ok"
