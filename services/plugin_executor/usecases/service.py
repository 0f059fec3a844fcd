"""The plugin executor's use cases: list the plugins, reload them, run one. Every request passes
here once, whatever carried it (HTTP, or a job: `usecases.jobs` runs its jobs through `run`).

A run's input is checked against the plugin's input schema (a 422 problem naming each failing
path) before the sandbox is asked for anything; the plugin's limits were resolved within the
service's ceilings when its manifest was loaded. A result is checked against the output schema
(a result that breaks it ends `invalid_output`). Whatever the plugin did is an outcome, never an
error: only bad input (422), an unknown plugin (404) and a sandbox that cannot take the run
(503) are. Each run that reached the sandbox is counted and audited (`plugin-executor.run`);
a reload is audited too.

jsonschema takes a few µs per JSON value (a 4 KiB array of numbers: ~14 ms), so a result of at
most `INLINE_VALUES` values is checked on the event loop, where a thread hop would cost more than
the check, and a larger one in a thread, where it cannot stall other requests.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance

from outrigger.errors import InvalidInput
from outrigger.telemetry.labels import OTHER
from services.plugin_executor.domain import Outcome, Reason, unknown_plugin
from services.plugin_executor.metrics import (
    PLUGIN_PROBLEMS,
    PLUGINS_LOADED,
    RUN_CPU_SECONDS,
    RUN_MAX_RSS_BYTES,
    RUN_WALL_SECONDS,
    RUNS,
    plugin_label,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from outrigger.audit_trail import AuditTrail
    from outrigger.auth import Principal
    from services.plugin_executor.domain import (
        Plugin,
        PluginId,
        PluginSource,
        Problem,
        Progress,
        Sandbox,
    )

MAX_REPORTED_ERRORS: Final = 20
MAX_MESSAGE: Final = 300
INLINE_VALUES: Final = 64


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the last scan loaded, and why the other folders were not."""

    plugins: tuple[Plugin, ...]
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class Run:
    """One run: which plugin (its digest included) and how it ended."""

    plugin: PluginId
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A plugin with its schemas compiled once."""

    plugin: Plugin
    input: Draft202012Validator
    output: Draft202012Validator

    @classmethod
    def of(cls, plugin: Plugin) -> _Loaded:
        return cls(
            plugin,
            Draft202012Validator(plugin.input_schema),
            Draft202012Validator(plugin.output_schema),
        )


class PluginService:
    def __init__(self, source: PluginSource, sandbox: Sandbox, audit: AuditTrail) -> None:
        self.source = source
        self.sandbox = sandbox
        self.audit = audit
        self._catalog = Catalog((), ())
        self._loaded: dict[str, _Loaded] = {}
        self._reloading = asyncio.Lock()

    def plugins(self) -> Catalog:
        return self._catalog

    async def load(self) -> Catalog:
        """Scans the source and hands its plugins to the sandbox (at start, and by `reload`)."""
        async with self._reloading:
            plugins, problems = await asyncio.to_thread(self.source.scan)
            loaded = {plugin.id.name: _Loaded.of(plugin) for plugin in plugins}
            self.sandbox.load(plugins)
            self._loaded = loaded
            self._catalog = Catalog(tuple(plugins), tuple(problems))
        PLUGINS_LOADED.set(len(plugins))
        PLUGIN_PROBLEMS.set(len(problems))
        return self._catalog

    async def reload(self, caller: Principal) -> Catalog:
        """Rescans the plugin folder without a restart: new and changed plugins in, removed
        ones out (a run already under way ends with the plugin it started with)."""
        catalog = await self.load()
        await self.audit.record(
            "reload",
            actor=caller.subject,
            resource="plugins",
            data={
                "loaded": [str(plugin.id) for plugin in catalog.plugins],
                "problems": len(catalog.problems),
            },
        )
        return catalog

    async def run(
        self,
        caller: Principal,
        name: str,
        payload: Any,
        progress: Callable[[Progress], None] | None = None,
    ) -> Run:
        """Runs plugin `name` on `payload` in the sandbox. Raises `NotFound` (no such plugin),
        `InvalidInput` (the payload breaks the input schema) or `SandboxUnavailable`."""
        loaded = self._checked(name, payload)
        plugin = loaded.plugin
        outcome = await self.sandbox.run(plugin, payload, plugin.limits, progress)
        if outcome.reason is Reason.OK:
            if _small(outcome.result):
                outcome = _checked_output(loaded, outcome)
            else:
                outcome = await asyncio.to_thread(_checked_output, loaded, outcome)
        _count(plugin, outcome.reason, outcome)
        await self.audit.record(
            "run",
            actor=caller.subject,
            resource=str(plugin.id),
            outcome="success" if outcome.reason is Reason.OK else "failure",
            data={
                "digest": plugin.id.digest,
                "reason": outcome.reason.value,
                "usage": asdict(outcome.usage),
            },
        )
        return Run(plugin.id, outcome)

    def loaded(self, name: str) -> PluginId | None:
        """The id of the plugin loaded under `name`, if one is."""
        found = self._loaded.get(name)
        return None if found is None else found.plugin.id

    def check(self, name: str, payload: Any) -> PluginId:
        """What `run` checks before it runs: the plugin is loaded (else `NotFound`) and
        `payload` fits its input schema (else `InvalidInput`, counted as a run ending
        `invalid_input`). Answers the plugin's id."""
        return self._checked(name, payload).plugin.id

    def _checked(self, name: str, payload: Any) -> _Loaded:
        loaded = self._loaded.get(name)
        if loaded is None:
            raise unknown_plugin(name)
        plugin = loaded.plugin
        if not isinstance(payload, dict):
            _count(plugin, Reason.INVALID_INPUT)
            raise InvalidInput(f"the input of {plugin.id} must be a JSON object")
        try:
            errors = list(loaded.input.iter_errors(payload))
        except RecursionError:  # a recursive schema, followed down a deeply nested input
            _count(plugin, Reason.INVALID_INPUT)
            raise InvalidInput(f"the input of {plugin.id} is nested too deeply to check") from None
        if errors:
            _count(plugin, Reason.INVALID_INPUT)
            raise _invalid_input(plugin, errors)
        return loaded


def _small(document: Any) -> bool:
    """Whether `document` holds at most `INLINE_VALUES` JSON values (it stops counting there)."""
    pending, seen = [document], 0
    while pending:
        seen += 1
        if seen > INLINE_VALUES:
            return False
        value = pending.pop()
        if type(value) is dict:
            pending += value.values()
        elif type(value) is list:
            pending += value
    return True


def _checked_output(loaded: _Loaded, outcome: Outcome) -> Outcome:
    """The outcome, or `invalid_output` when its result breaks the output schema."""
    if outcome.result is None:
        return replace(outcome, reason=Reason.INVALID_OUTPUT, detail="the plugin gave no result")
    try:
        error = best_match(loaded.output.iter_errors(outcome.result))
    except RecursionError:
        detail = "the result is nested too deeply to check against the output schema"
        return Outcome(Reason.INVALID_OUTPUT, outcome.usage, detail=detail)
    if error is None:
        return outcome
    where, message = _described(error)
    return Outcome(
        Reason.INVALID_OUTPUT,
        outcome.usage,
        detail=f"the result breaks the output schema at {where or 'its root'}: {message}",
    )


def _invalid_input(plugin: Plugin, errors: Sequence[ValidationError]) -> InvalidInput:
    """A 422 problem: the most relevant error in `detail`, the first 20 in `errors`."""
    headline = best_match(errors)
    assert headline is not None
    where, message = _described(headline)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    listed = []
    for error in sorted(errors, key=relevance, reverse=True)[:MAX_REPORTED_ERRORS]:
        field, text = _described(error)
        listed.append(
            {"location": "body", "field": field, "message": text, "type": error.validator}
        )
    return InvalidInput(
        f"{where or 'the input'}: {message}{more}", errors=listed, plugin=str(plugin.id)
    )


def _described(error: ValidationError) -> tuple[str, str]:
    """Where in the document an error is (dotted, as the kit's field problems) and what it
    says, cut short (a message may quote a large value)."""
    path = [str(part) for part in error.absolute_path]
    message = error.message
    if error.validator == "required" and isinstance(error.validator_value, list):
        missing = next((str(n) for n in error.validator_value if message.startswith(repr(n))), None)
        if missing is not None:
            path.append(missing)
            message = "is required"
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return ".".join(path), message


def _count(plugin: Plugin, reason: Reason, outcome: Outcome | None = None) -> None:
    label = plugin_label(plugin.id.name)
    version = plugin.id.version if label != OTHER else OTHER
    RUNS.labels(label, version, reason.value).inc()
    if outcome is not None:
        usage = outcome.usage
        RUN_WALL_SECONDS.labels(label, version).observe(usage.wall_s)
        RUN_CPU_SECONDS.labels(label, version).observe(usage.cpu_s)
        RUN_MAX_RSS_BYTES.labels(label, version).observe(usage.max_rss_kib * 1024)
