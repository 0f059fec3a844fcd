"""The rules a plugin's manifest (`plugin.toml`) and folder must follow, and the digest.

A manifest holds `name` (`a-z 0-9 _ -`, at most 64, starting with a letter or digit), `version`
(semver-ish: `1`, `1.2`, `1.2.3`, with an optional `-pre.release` and `+build`), `entrypoint`
(`module:function`, the module a file of the folder), an optional `description`,
`input_schema` and `output_schema` (JSON Schema 2020-12 documents whose `$ref`s resolve inside
them), an optional `[limits]` table (each limit a positive number within the service's ceiling;
a missing one takes the service's default) and `permissions` (none is known yet, so any one is
refused). Any other key is refused, so a typo (`[limit]`) is reported rather than ignored.

The digest is SHA-256 over the folder's files in the order of their relative paths (`/`
separators, compared as text): for each, its path in UTF-8, a NUL byte, its size in decimal
ASCII, a NUL byte, then its content. Byte code (`__pycache__` folders, `*.pyc`) is not part of
a plugin, so running it does not change its identity.
"""

from __future__ import annotations

import hashlib
import keyword
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from services.plugin_executor.domain.models import Limits, Plugin, PluginId, Problem

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
    from pathlib import Path

    from jsonschema import SchemaError
    from referencing import Resource

MANIFEST: Final = "plugin.toml"
MAX_MANIFEST_BYTES: Final = 256 * 1024
MAX_FOLDER_FILES: Final = 1000
MAX_FOLDER_BYTES: Final = 64 * 1024 * 1024
MAX_DESCRIPTION: Final = 1000
BYTE_CODE_FOLDER: Final = "__pycache__"

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_NUMBER = r"(0|[1-9][0-9]{0,8})"
_LABEL = r"[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*"
VERSION_PATTERN: Final = rf"^{_NUMBER}(\.{_NUMBER}){{0,2}}(-{_LABEL})?(\+{_LABEL})?$"
MAX_VERSION: Final = 64
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
ENTRYPOINT_PATTERN: Final = rf"^({_IDENTIFIER}(\.{_IDENTIFIER})*):({_IDENTIFIER})$"
SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

MANIFEST_KEYS: Final = frozenset(
    {
        "name",
        "version",
        "entrypoint",
        "description",
        "input_schema",
        "output_schema",
        "limits",
        "permissions",
    }
)
LIMITS: Final = ("cpu_seconds", "memory_mib", "wall_seconds", "output_kib")
WHOLE_LIMITS: Final = frozenset({"memory_mib", "output_kib"})
KNOWN_PERMISSIONS: Final[frozenset[str]] = frozenset()

_NAME = re.compile(NAME_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
_ENTRYPOINT = re.compile(ENTRYPOINT_PATTERN)
_SCHEMA_BASE = "urn:outrigger:plugin-schema"


class InvalidManifest(ValueError):
    """A manifest (or its folder) breaks a rule; the message says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """The service's limits: what a plugin gets when its manifest says nothing, and the most
    a manifest may ask for."""

    defaults: Limits
    ceilings: Limits


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidManifest(
            f"name {name!r} is not valid: 1-64 of a-z 0-9 _ -, starting with a letter or digit"
        )
    return name


def check_version(version: object) -> str:
    if (
        not isinstance(version, str)
        or len(version) > MAX_VERSION
        or not _VERSION.fullmatch(version)
    ):
        raise InvalidManifest(
            f"version {version!r} is not valid: a text such as '1', '1.2' or '1.2.3', "
            "optionally with '-pre.release' and '+build' (no leading zeros)"
        )
    return version


def version_key(version: str) -> tuple[Any, ...]:
    """Orders versions as semantic versioning does: numbers compared as numbers (a missing
    one is 0), a pre-release before its release, build metadata ignored."""
    core, _, rest = version.partition("+")[0].partition("-")
    numbers = [int(part) for part in core.split(".")]
    numbers += [0] * (3 - len(numbers))
    if not rest:
        return (*numbers, 1, ())
    labels = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in rest.split(".")
    )
    return (*numbers, 0, labels)


def parse_entrypoint(entrypoint: object, files: Collection[str]) -> tuple[str, str]:
    """`module:function`, whose module is a file of the folder (`a/b.py` or `a/b/__init__.py`
    for `a.b`) and not a module of the standard library, which it would hide."""
    match = _ENTRYPOINT.fullmatch(entrypoint) if isinstance(entrypoint, str) else None
    if match is None:
        raise InvalidManifest(f"entrypoint {entrypoint!r} is not 'module:function'")
    module, function = match.group(1), match.group(3)
    if any(keyword.iskeyword(part) for part in [*module.split("."), function]):
        raise InvalidManifest(f"entrypoint {entrypoint!r} uses a Python keyword as a name")
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        raise InvalidManifest(
            f"entrypoint module {module!r} would hide the standard library's {top!r}; rename it"
        )
    stem = module.replace(".", "/")
    if f"{stem}.py" not in files and f"{stem}/__init__.py" not in files:
        raise InvalidManifest(f"entrypoint module {module!r}: the folder has no {stem}.py")
    return module, function


def check_schema(schema: object, key: str) -> dict[str, Any]:
    """A JSON Schema 2020-12 document (a table), valid against its meta-schema, whose `$ref`s
    all resolve inside it (nothing is fetched)."""
    # imported here: the sandbox's workers import the domain's models, and nothing of this
    from jsonschema import Draft202012Validator, SchemaError
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    if not isinstance(schema, dict):
        raise InvalidManifest(f"{key} must be a table (a JSON Schema object)")
    dialect = schema.get("$schema", SCHEMA_DIALECT)
    if not isinstance(dialect, str) or dialect.rstrip("#") != SCHEMA_DIALECT:
        raise InvalidManifest(f"{key}: $schema must be {SCHEMA_DIALECT!r} (or left out)")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        raise InvalidManifest(
            f"{key} is not a valid JSON Schema{f' at {where}' if where else ''}: {_short(exc)}"
        ) from None
    resource = DRAFT202012.create_resource(schema)
    resolver = Registry().with_resource(_SCHEMA_BASE, resource).resolver(_SCHEMA_BASE)
    _check_refs(resolver, resource, key)
    return schema


def _check_refs(resolver: Any, resource: Resource[Any], key: str) -> None:
    from referencing.exceptions import Unresolvable

    resolver = resolver.in_subresource(resource)
    contents = resource.contents
    if isinstance(contents, dict):
        for keyword_ in ("$ref", "$dynamicRef"):
            ref = contents.get(keyword_)
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    raise InvalidManifest(
                        f"{key}: {keyword_} {ref!r} does not point inside the schema "
                        "(only references within it are followed)"
                    ) from None
    for sub in resource.subresources():
        _check_refs(resolver, sub, key)


def _short(exc: SchemaError) -> str:
    message = exc.message
    return message if len(message) <= 200 else message[:197] + "..."


def resolve_limits(table: object, policy: LimitPolicy) -> Limits:
    """The manifest's `[limits]`, each within its ceiling, the defaults for the ones left out."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise InvalidManifest("limits must be a table ([limits])")
    unknown = sorted(set(table) - set(LIMITS))
    if unknown:
        raise InvalidManifest(
            f"limits.{unknown[0]} is not a limit; the limits are {', '.join(LIMITS)}"
        )
    values: dict[str, Any] = {}
    for name in LIMITS:
        value = table.get(name, getattr(policy.defaults, name))
        whole = name in WHOLE_LIMITS
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            kind = "a whole number" if whole else "a number"
            raise InvalidManifest(f"limits.{name} must be {kind}, not {value!r}")
        if value <= 0:
            raise InvalidManifest(f"limits.{name} must be above 0, not {value!r}")
        ceiling = getattr(policy.ceilings, name)
        if value > ceiling:
            raise InvalidManifest(
                f"limits.{name} = {value} is over the service's ceiling of {ceiling} "
                f"(OUTRIGGER_PLUGINS_MAX_{name.upper()})"
            )
        values[name] = value if whole else float(value)
    return Limits(**values)


def check_permissions(permissions: object) -> frozenset[str]:
    """A list of permissions the service knows; none is known yet, so it must be empty."""
    if permissions is None:
        return frozenset()
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise InvalidManifest("permissions must be a list of names")
    unknown = sorted(set(permissions) - KNOWN_PERMISSIONS)
    if unknown:
        known = ", ".join(sorted(KNOWN_PERMISSIONS)) or "none yet"
        raise InvalidManifest(f"permission {unknown[0]!r} is unknown (known: {known})")
    return frozenset(permissions)


def plugin_of(
    manifest: Mapping[str, Any],
    *,
    folder: Path,
    files: Collection[str],
    digest: str,
    policy: LimitPolicy,
) -> Plugin:
    """The plugin a manifest describes, every rule checked; `files` are the folder's files
    (relative paths) and `digest` their `folder_digest`. Raises `InvalidManifest`."""
    unknown = sorted(set(manifest) - MANIFEST_KEYS)
    if unknown:
        raise InvalidManifest(
            f"{unknown[0]!r} is not a manifest key; the keys are {', '.join(sorted(MANIFEST_KEYS))}"
        )
    name = check_name(_required(manifest, "name"))
    version = check_version(_required(manifest, "version"))
    module, function = parse_entrypoint(_required(manifest, "entrypoint"), files)
    description = manifest.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidManifest(f"description must be a text of at most {MAX_DESCRIPTION} characters")
    return Plugin(
        id=PluginId(name, version, digest),
        folder=folder,
        module=module,
        function=function,
        description=description,
        input_schema=check_schema(_required(manifest, "input_schema"), "input_schema"),
        output_schema=check_schema(_required(manifest, "output_schema"), "output_schema"),
        limits=resolve_limits(manifest.get("limits"), policy),
        permissions=check_permissions(manifest.get("permissions")),
    )


def _required(manifest: Mapping[str, Any], key: str) -> Any:
    if key not in manifest:
        raise InvalidManifest(f"{key} is missing")
    return manifest[key]


def is_byte_code(relative: str) -> bool:
    """Whether a path of a plugin's folder is byte code, which is not part of the plugin."""
    return relative.endswith(".pyc") or BYTE_CODE_FOLDER in relative.split("/")


def folder_digest(paths: Iterable[str], read: Callable[[str], bytes]) -> str:
    """SHA-256 of the files at `paths` (relative, `/`-separated), read with `read` in the
    order of their paths (the module docstring says how they are framed)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        content = read(path)
        digest.update(b"%s\0%d\0" % (path.encode(), len(content)))
        digest.update(content)
    return digest.hexdigest()


def newest_versions(
    found: Sequence[tuple[str, Plugin]],
) -> tuple[list[Plugin], list[Problem]]:
    """One plugin per name, the highest version of it (`version_key`), and a problem for each
    other folder of that name. `found` pairs a folder's name with its plugin; for one version
    in two folders, the folder first by name wins."""
    winners: dict[str, tuple[str, Plugin]] = {}
    problems: list[Problem] = []
    ordered = sorted(found, key=lambda pair: pair[0])
    ordered.sort(key=lambda pair: version_key(pair[1].id.version), reverse=True)  # stable
    for folder, plugin in ordered:
        kept = winners.get(plugin.id.name)
        if kept is None:
            winners[plugin.id.name] = (folder, plugin)
            continue
        problems.append(
            Problem(
                folder,
                f"{plugin.id} is not loaded: {kept[1].id} (folder {kept[0]!r}) has the same "
                "name and a higher version"
                if version_key(kept[1].id.version) != version_key(plugin.id.version)
                else f"{plugin.id} is not loaded: folder {kept[0]!r} holds the same version",
            )
        )
    plugins = [plugin for _, plugin in sorted(winners.values(), key=lambda p: p[1].id.name)]
    return plugins, sorted(problems, key=lambda problem: problem.folder)
