"""The JSON the API gives and takes. A run's body is the plugin's input itself (any JSON object,
checked against the plugin's input schema by the use case), so a run has no request model; a
job's body names the plugin beside its input."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from outrigger.http import JsonObjectField
from services.plugin_executor.domain import (
    NAME_PATTERN,
    Job,
    Limits,
    Plugin,
    Problem,
    Reason,
    Usage,
)
from services.plugin_executor.usecases import Catalog, Run, job_document


class LimitsOut(BaseModel):
    cpu_seconds: float = Field(gt=0, description="CPU time (user and system) of a run.")
    memory_mib: int = Field(gt=0, description="Memory a run may take.")
    wall_seconds: float = Field(gt=0, description="Wall-clock time of a run.")
    output_kib: int = Field(gt=0, description="The result, as JSON; cut (and reported) beyond.")

    @classmethod
    def of(cls, limits: Limits) -> "LimitsOut":
        return cls(
            cpu_seconds=limits.cpu_seconds,
            memory_mib=limits.memory_mib,
            wall_seconds=limits.wall_seconds,
            output_kib=limits.output_kib,
        )


class PluginOut(BaseModel):
    name: str
    version: str
    digest: str = Field(
        description="SHA-256 of the plugin's folder (its files' paths and contents), hex: a "
        "changed file is another plugin, even under the same version."
    )
    description: str
    input_schema: JsonObjectField = Field(description="JSON Schema 2020-12 of a run's input.")
    output_schema: JsonObjectField = Field(description="JSON Schema 2020-12 of its result.")
    limits: LimitsOut
    permissions: list[str]

    @classmethod
    def of(cls, plugin: Plugin) -> "PluginOut":
        return cls(
            name=plugin.id.name,
            version=plugin.id.version,
            digest=plugin.id.digest,
            description=plugin.description,
            input_schema=plugin.input_schema,
            output_schema=plugin.output_schema,
            limits=LimitsOut.of(plugin.limits),
            permissions=sorted(plugin.permissions),
        )


class ProblemOut(BaseModel):
    folder: str = Field(description="The folder of the plugin folder that was not loaded.")
    detail: str = Field(description="Why not, and what to fix.")

    @classmethod
    def of(cls, problem: Problem) -> "ProblemOut":
        return cls(folder=problem.folder, detail=problem.detail)


class PluginsOut(BaseModel):
    plugins: list[PluginOut] = Field(description="The loaded plugins, by name.")
    problems: list[ProblemOut] | None = Field(
        description="The folders the last scan could not load, and why: shown to callers "
        "with `plugins:admin`, null for the others."
    )

    @classmethod
    def of(cls, catalog: Catalog, *, problems: bool) -> "PluginsOut":
        return cls(
            plugins=[PluginOut.of(plugin) for plugin in catalog.plugins],
            problems=[ProblemOut.of(problem) for problem in catalog.problems] if problems else None,
        )


class UsageOut(BaseModel):
    cpu_s: float = Field(ge=0, description="CPU time used, user and system, in seconds.")
    max_rss_kib: int = Field(ge=0, description="Peak resident memory, in KiB.")
    wall_s: float = Field(ge=0, description="Wall-clock time, in seconds.")

    @classmethod
    def of(cls, usage: Usage) -> "UsageOut":
        return cls(cpu_s=usage.cpu_s, max_rss_kib=usage.max_rss_kib, wall_s=usage.wall_s)


class RunOut(BaseModel):
    plugin: str = Field(description="The plugin's name.")
    version: str
    digest: str = Field(description="The digest of the plugin that ran.")
    result: JsonObjectField | None = Field(
        description="The plugin's result (valid against its output schema): only when "
        "`reason` is `ok`."
    )
    reason: Reason = Field(
        description="How the run ended: `ok`, or why there is no result (`error`: the plugin "
        "raised; `timeout`, `cpu_limit`, `memory_limit`, `output_limit`: a limit stopped it; "
        "`killed`; `invalid_output`: the result broke the output schema or was no JSON "
        "object; `sandbox_violation`: it tried what the sandbox forbids)."
    )
    detail: str | None = Field(description="What went wrong, when it did (no host path).")
    usage: UsageOut

    @classmethod
    def of(cls, run: Run) -> "RunOut":
        outcome = run.outcome
        return cls(
            plugin=run.plugin.name,
            version=run.plugin.version,
            digest=run.plugin.digest,
            result=outcome.result if outcome.reason is Reason.OK else None,
            reason=outcome.reason,
            detail=outcome.detail,
            usage=UsageOut.of(outcome.usage),
        )


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(
        pattern=NAME_PATTERN, description="A loaded plugin's name (`GET /v1/plugins`)."
    )
    input: JsonObjectField = Field(
        description="The plugin's input: a JSON object its schema accepts."
    )


class ProgressOut(BaseModel):
    progress: float = Field(description="The fraction done the plugin last reported (0-1).")
    message: str | None = Field(description="What it said with it, if anything.")


class JobOut(BaseModel):
    id: str = Field(
        description="The job's id (a UUID, or a bus job's CloudEvent id): `GET /v1/jobs/{id}` "
        "follows it."
    )
    plugin: str = Field(description="The plugin's name.")
    version: str | None = Field(description="The plugin's version, once a run began.")
    state: Literal["queued", "running", "done"] = Field(
        description="`queued` (waiting for a worker), `running`, or `done` (see `reason`)."
    )
    progress: ProgressOut | None = Field(description="The last progress report, if any.")
    result: JsonObjectField | None = Field(
        description="The plugin's result, once done with `reason` `ok`."
    )
    reason: Reason | None = Field(
        description="How the run ended, once done (as `POST /v1/plugins/{name}/run` says; "
        "`invalid_input` too, for a job from the bus)."
    )
    detail: str | None = Field(description="What went wrong, when it did (no host path).")
    usage: UsageOut | None = Field(description="What the run used, once done.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> "JobOut":
        return cls.model_validate(job_document(job))
