"""What the plugin executor knows: plugins (a manifest and its code), limits, runs and their
endings, and what the host's sandbox offers.

A plugin is identified by name, version and the SHA-256 of its folder (`PluginId.digest`): a
changed file is another plugin, even under the same version.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


class Reason(enum.StrEnum):
    """How a run ended. Only `ok` carries a result; every other one says why there is none."""

    OK = "ok"
    ERROR = "error"  # the plugin raised: its message, without host paths
    TIMEOUT = "timeout"  # the wall-clock limit: the whole process group killed
    CPU_LIMIT = "cpu_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"  # cut at the limit, and reported
    KILLED = "killed"  # a signal from outside (the service stopping, an operator)
    INVALID_INPUT = "invalid_input"
    INVALID_OUTPUT = "invalid_output"  # not a JSON object, or against the output schema
    SANDBOX_VIOLATION = "sandbox_violation"  # a forbidden system call, a denied path


@dataclass(frozen=True, slots=True)
class Limits:
    """One run's resource limits (each within the service's ceiling)."""

    cpu_seconds: float
    memory_mib: int
    wall_seconds: float
    output_kib: int


@dataclass(frozen=True, slots=True)
class PluginId:
    name: str
    version: str
    digest: str  # SHA-256 of the folder's files (paths and contents), hex

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Plugin:
    """A loaded plugin: its manifest, checked, and where its code is."""

    id: PluginId
    folder: Path
    module: str  # the entrypoint's module, importable from `folder`
    function: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    limits: Limits
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Problem:
    """A plugin folder that could not be loaded, and why (reported, never fatal)."""

    folder: str
    detail: str


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_s: float
    max_rss_kib: int
    wall_s: float


@dataclass(frozen=True, slots=True)
class Progress:
    """What a plugin yielded before its result: a fraction done (0-1) and a message."""

    progress: float
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run ended: `result` only with `Reason.OK`; `detail` says what went wrong
    otherwise (never a host path)."""

    reason: Reason
    usage: Usage
    result: dict[str, Any] | None = None
    detail: str | None = None


class Feature(enum.StrEnum):
    """The sandbox's layers; which ones a host offers is probed at start."""

    RLIMITS = "rlimits"
    SESSION = "session"  # a process group of its own, killed whole
    SECCOMP = "seccomp"  # socket creation refused (every family)
    LANDLOCK = "landlock"  # the file system narrowed to the interpreter, the plugin, the work dir
    NETWORK_NAMESPACE = "network_namespace"  # the pool's workers in an empty network namespace
    SEPARATE_UID = "separate_uid"  # jobs under uids of their own (when the service is root)


@dataclass(frozen=True, slots=True)
class Features:
    """What the host offers, as probed; `detail` says why a missing one is missing."""

    active: frozenset[Feature]
    detail: dict[Feature, str] = field(default_factory=dict)
