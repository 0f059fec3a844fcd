"""Plugins from a folder: every manifest rule, the folder's rules (no links, no special files),
versions, the digest, and reloading. A broken plugin is a problem reported beside the others,
never a failure of the scan."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from outrigger.audit_trail import AuditTrail
from outrigger.auth import Principal
from outrigger.bus import connect_bus
from outrigger.testing import unique
from services.plugin_executor.adapters.plugins import PluginFolder
from services.plugin_executor.domain import LimitPolicy, Limits, version_key
from services.plugin_executor.usecases import PluginService
from tests.plugin_executor.fake_sandbox import InProcessSandbox

if TYPE_CHECKING:
    from pathlib import Path

    from services.plugin_executor.domain import Plugin, Problem

POLICY = LimitPolicy(
    defaults=Limits(5.0, 256, 10.0, 1024), ceilings=Limits(60.0, 2048, 300.0, 16384)
)
CODE = "def run(payload):\n    return payload\n"


def manifest(
    name: str = "demo", version: str = "1.0.0", entrypoint: str = "main:run", extra: str = ""
) -> str:
    return (
        f'name = "{name}"\nversion = "{version}"\nentrypoint = "{entrypoint}"\n'
        'description = "A test plugin."\n'
        'input_schema = { type = "object" }\n'
        'output_schema = { type = "object" }\n'
        f"{extra}\n"
    )


def write(
    root: Path, folder: str, text: str | None = None, files: dict[str, str] | None = None
) -> Path:
    where = root / folder
    where.mkdir(parents=True)
    (where / "plugin.toml").write_text(manifest() if text is None else text)
    for relative, content in (files if files is not None else {"main.py": CODE}).items():
        (where / relative).parent.mkdir(parents=True, exist_ok=True)
        (where / relative).write_text(content)
    return where


def scan(root: Path) -> tuple[list[Plugin], list[Problem]]:
    return PluginFolder(root, POLICY).scan()


def only_problem(root: Path) -> str:
    """The detail of the one problem of a scan that loads the well-formed `good` plugin too."""
    write(root, "good", manifest(name="good"))
    plugins, problems = scan(root)
    assert [plugin.id.name for plugin in plugins] == ["good"], "a problem is never fatal"
    [problem] = problems
    assert problem.folder == "bad"
    return problem.detail


def test_a_valid_folder_is_a_plugin_with_defaults_for_the_limits_left_out(tmp_path: Path) -> None:
    write(tmp_path, "demo", manifest(extra="[limits]\ncpu_seconds = 2\n"))
    [plugin], problems = scan(tmp_path)
    assert problems == []
    assert (plugin.id.name, plugin.id.version, plugin.module, plugin.function) == (
        "demo",
        "1.0.0",
        "main",
        "run",
    )
    assert plugin.folder == tmp_path / "demo"
    assert plugin.description == "A test plugin."
    assert plugin.input_schema == {"type": "object"}
    assert plugin.limits == Limits(
        cpu_seconds=2.0, memory_mib=256, wall_seconds=10.0, output_kib=1024
    )
    assert plugin.permissions == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (manifest(name="Upper"), "name 'Upper' is not valid"),
        (manifest(name="-lead"), "name '-lead' is not valid"),
        (manifest(name="a" * 65), "is not valid: 1-64 of a-z 0-9 _ -"),
        (manifest().replace('name = "demo"', "name = 5"), "name 5 is not valid"),
        (manifest(version="1.02"), "version '1.02' is not valid"),
        (manifest(version="v1"), "version 'v1' is not valid"),
        (manifest(version="1.2.3.4"), "version '1.2.3.4' is not valid"),
        (manifest(version="1.0.0-"), "version '1.0.0-' is not valid"),
        (manifest(entrypoint="main"), "entrypoint 'main' is not 'module:function'"),
        (manifest(entrypoint="main:run:x"), "is not 'module:function'"),
        (manifest(entrypoint="1main:run"), "is not 'module:function'"),
        (manifest(entrypoint="main:class"), "uses a Python keyword"),
        (manifest(entrypoint="json:loads"), "would hide the standard library's 'json'"),
        (manifest(entrypoint="missing:run"), "entrypoint module 'missing': the folder has no"),
        (manifest().replace('"A test plugin."', "5"), "description must be a text"),
        (manifest().replace("A test plugin.", "x" * 1001), "at most 1000 characters"),
        (manifest(extra="limit = { cpu_seconds = 1 }"), "'limit' is not a manifest key"),
        (manifest().replace('version = "1.0.0"\n', ""), "version is missing"),
        (
            manifest().replace('output_schema = { type = "object" }\n', ""),
            "output_schema is missing",
        ),
        ("name = ", "plugin.toml is not valid TOML"),
    ],
)
def test_each_manifest_rule_is_a_problem_naming_it(
    tmp_path: Path, text: str, expected: str
) -> None:
    write(tmp_path, "bad", text)
    assert expected in only_problem(tmp_path)


SCHEMA_CASES = [
    ('input_schema = "object"', "input_schema must be a table"),
    ('input_schema = { type = "nope" }', "input_schema is not a valid JSON Schema at type"),
    ('input_schema = { type = "object", required = "text" }', "not a valid JSON Schema"),
    (
        'input_schema = { "$schema" = "http://json-schema.org/draft-07/schema#" }',
        "$schema must be 'https://json-schema.org/draft/2020-12/schema'",
    ),
    (
        'input_schema = { "$ref" = "https://example.com/schema.json" }',
        "$ref 'https://example.com/schema.json' does not point inside the schema",
    ),
    (
        'input_schema = { properties = { a = { "$ref" = "#/$defs/nowhere" } } }',
        "$ref '#/$defs/nowhere' does not point inside",
    ),
]


@pytest.mark.parametrize(("line", "expected"), SCHEMA_CASES)
def test_schemas_are_checked_as_json_schema_2020_12(
    tmp_path: Path, line: str, expected: str
) -> None:
    write(tmp_path, "bad", manifest().replace('input_schema = { type = "object" }', line))
    assert expected in only_problem(tmp_path)


def test_references_inside_a_schema_and_its_dialect_named_are_accepted(tmp_path: Path) -> None:
    schema = (
        'input_schema = { "$schema" = "https://json-schema.org/draft/2020-12/schema", '
        'properties = { a = { "$ref" = "#/$defs/text" }, b = { "$ref" = "#word" } }, '
        '"$defs" = { text = { type = "string" }, word = { "$anchor" = "word", type = "string" } } }'
    )
    write(tmp_path, "demo", manifest().replace('input_schema = { type = "object" }', schema))
    [plugin], problems = scan(tmp_path)
    assert problems == []
    assert plugin.input_schema["$defs"]["text"] == {"type": "string"}


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ("walltime = 3", "limits.walltime is not a limit; the limits are cpu_seconds, memory_mib"),
        ('cpu_seconds = "2"', "limits.cpu_seconds must be a number, not '2'"),
        ("cpu_seconds = true", "limits.cpu_seconds must be a number, not True"),
        ("memory_mib = 1.5", "limits.memory_mib must be a whole number, not 1.5"),
        ("wall_seconds = 0", "limits.wall_seconds must be above 0"),
        ("output_kib = -1", "limits.output_kib must be above 0"),
        (
            "cpu_seconds = 61",
            "limits.cpu_seconds = 61 is over the service's ceiling of 60.0 "
            "(OUTRIGGER_PLUGINS_MAX_CPU_SECONDS)",
        ),
        ("memory_mib = 4096", "limits.memory_mib = 4096 is over the service's ceiling of 2048"),
    ],
)
def test_limits_are_positive_numbers_within_the_ceilings(
    tmp_path: Path, limits: str, expected: str
) -> None:
    write(tmp_path, "bad", manifest(extra=f"[limits]\n{limits}"))
    assert expected in only_problem(tmp_path)


def test_limits_must_be_a_table(tmp_path: Path) -> None:
    write(tmp_path, "bad", manifest(extra="limits = 5"))
    assert "limits must be a table" in only_problem(tmp_path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('permissions = ["network"]', "permission 'network' is unknown (known: none yet)"),
        ('permissions = "network"', "permissions must be a list of names"),
    ],
)
def test_every_permission_is_refused_as_none_is_known_yet(
    tmp_path: Path, line: str, expected: str
) -> None:
    write(tmp_path, "bad", manifest(extra=line))
    assert expected in only_problem(tmp_path)


def test_no_permissions_is_what_a_plugin_has(tmp_path: Path) -> None:
    write(tmp_path, "demo", manifest(extra="permissions = []"))
    [plugin], _ = scan(tmp_path)
    assert plugin.permissions == frozenset()


def test_an_entrypoint_in_a_package_of_the_folder(tmp_path: Path) -> None:
    write(
        tmp_path,
        "demo",
        manifest(entrypoint="pkg.tool:run"),
        {"pkg/__init__.py": "", "pkg/tool.py": CODE},
    )
    [plugin], problems = scan(tmp_path)
    assert (plugin.module, problems) == ("pkg.tool", [])


def test_a_folder_without_a_manifest_or_with_a_broken_one_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "main.py").write_text(CODE)
    assert only_problem(tmp_path) == "no plugin.toml in the folder"


def test_a_manifest_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "bad")
    (tmp_path / "bad" / "plugin.toml").write_bytes(b'name = "\xff"\n')
    assert only_problem(tmp_path) == "plugin.toml is not UTF-8 text"


def test_a_symbolic_link_in_a_plugin_folder_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "bad")
    (tmp_path / "bad" / "passwd").symlink_to("/etc/passwd")
    assert only_problem(tmp_path) == (
        "passwd is a symbolic link; a plugin's folder holds none (links are not followed)"
    )


def test_a_linked_folder_deep_in_a_plugin_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "bad", files={"main.py": CODE, "data/readme.txt": "x"})
    (tmp_path / "bad" / "data" / "etc").symlink_to("/etc", target_is_directory=True)
    assert "data/etc is a symbolic link" in only_problem(tmp_path)


def test_a_plugin_folder_that_is_a_link_is_a_problem(tmp_path: Path) -> None:
    elsewhere = write(tmp_path / "elsewhere", "real", manifest(name="real"))
    root = tmp_path / "plugins"
    root.mkdir()
    (root / "bad").symlink_to(elsewhere, target_is_directory=True)
    assert only_problem(root) == "is a symbolic link, which is not followed"


def test_a_pipe_in_a_plugin_folder_is_a_problem_and_is_never_read(tmp_path: Path) -> None:
    write(tmp_path, "bad")
    os.mkfifo(tmp_path / "bad" / "pipe")
    assert only_problem(tmp_path) == "pipe is not a regular file"


def test_files_and_dot_folders_beside_the_plugins_are_passed_over(tmp_path: Path) -> None:
    write(tmp_path, "demo")
    (tmp_path / "README.md").write_text("the plugins")
    (tmp_path / ".git").mkdir()
    plugins, problems = scan(tmp_path)
    assert ([plugin.id.name for plugin in plugins], problems) == (["demo"], [])


def test_the_highest_version_of_a_name_wins_and_the_others_are_problems(tmp_path: Path) -> None:
    for folder, version in [("demo-a", "1.9.0"), ("demo-b", "1.10.0"), ("demo-c", "1.10.0-rc.1")]:
        write(tmp_path, folder, manifest(version=version))
    [plugin], problems = scan(tmp_path)
    assert plugin.id.version == "1.10.0"
    assert plugin.folder.name == "demo-b"
    assert [(problem.folder, problem.detail) for problem in problems] == [
        (
            "demo-a",
            "demo@1.9.0 is not loaded: demo@1.10.0 (folder 'demo-b') has the same name "
            "and a higher version",
        ),
        (
            "demo-c",
            "demo@1.10.0-rc.1 is not loaded: demo@1.10.0 (folder 'demo-b') has the same "
            "name and a higher version",
        ),
    ]


def test_one_version_in_two_folders_loads_the_first_folder(tmp_path: Path) -> None:
    write(tmp_path, "demo-b", manifest(version="1.0"))
    write(tmp_path, "demo-a", manifest(version="1.0.0"))
    [plugin], [problem] = scan(tmp_path)
    assert plugin.folder.name == "demo-a"
    assert (problem.folder, problem.detail) == (
        "demo-b",
        "demo@1.0 is not loaded: folder 'demo-a' holds the same version",
    )


def test_versions_order_as_semantic_versioning_says() -> None:
    ordered = [
        "0.9",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2",
        "1.10.0",
        "2",
    ]
    shuffled = ordered[1::2] + ordered[::2]
    assert sorted(shuffled, key=version_key) == ordered
    assert version_key("1.0.0+build.5") == version_key("1.0.0") == version_key("1")


def digest_of(root: Path) -> str:
    [plugin], problems = scan(root)
    assert problems == []
    return plugin.id.digest


def test_the_digest_is_sha256_over_the_sorted_paths_and_contents(tmp_path: Path) -> None:
    write(tmp_path, "demo", files={"main.py": CODE, "data/words.txt": "a b"})
    expected = hashlib.sha256()
    for path in ["data/words.txt", "main.py", "plugin.toml"]:
        content = (tmp_path / "demo" / path).read_bytes()
        expected.update(path.encode() + b"\0" + str(len(content)).encode() + b"\0" + content)
    assert digest_of(tmp_path) == expected.hexdigest()


def test_the_digest_changes_with_any_file_but_not_with_byte_code(tmp_path: Path) -> None:
    folder = write(tmp_path, "demo")
    first = digest_of(tmp_path)
    assert digest_of(tmp_path) == first, "a scan reads the same folder the same way"
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0" * 16)
    (folder / "stray.pyc").write_bytes(b"\0")
    assert digest_of(tmp_path) == first
    (folder / "main.py").write_text(CODE + "# one more line\n")
    changed = digest_of(tmp_path)
    (folder / "main.py").rename(folder / "other.py")
    (folder / "main.py").write_text(CODE + "# one more line\n")
    (folder / "other.py").unlink()
    assert digest_of(tmp_path) == changed, "the same files, the same digest"
    (folder / "notes.txt").write_text("")
    added = digest_of(tmp_path)
    assert len({first, changed, added}) == 3


async def test_a_reload_rescans_and_hands_the_plugins_to_the_sandbox(tmp_path: Path) -> None:
    folder = write(tmp_path, "demo")
    sandbox = InProcessSandbox()
    bus = connect_bus(f"memory://{unique('bus')}", source="tests")
    await bus.start()
    try:
        service = PluginService(
            PluginFolder(tmp_path, POLICY), sandbox, AuditTrail(bus, "plugin-executor")
        )
        first = await service.load()
        (folder / "main.py").write_text(CODE + "# changed\n")
        write(tmp_path, "second", manifest(name="second"))
        write(tmp_path, "third", manifest(name="Third"))
        again = await service.reload(Principal("operator"))
    finally:
        await bus.close()
    assert [plugin.id.name for plugin in first.plugins] == ["demo"]
    assert [plugin.id.name for plugin in again.plugins] == ["demo", "second"]
    assert again.plugins[0].id.digest != first.plugins[0].id.digest
    assert [problem.folder for problem in again.problems] == ["third"]
    assert service.plugins() == again
    assert [plugin.id.name for plugin in sandbox.loaded] == ["demo", "second"]
