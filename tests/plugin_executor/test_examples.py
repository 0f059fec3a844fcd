"""The three example plugins (`plugins/` at the repository's root), their functions called
directly in this process on sample inputs: each answer is what the README promises and fits
the plugin's output schema, and each manifest is valid."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft202012Validator

from services.plugin_executor.adapters.plugins import PluginFolder
from services.plugin_executor.domain import Reason
from services.plugin_executor.settings import PluginSettings
from tests.plugin_executor.sandbox_support import LEVELS, Level, started, uid_base, work_root

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from services.plugin_executor.domain import Plugin

EXAMPLES = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture(scope="module")
def examples() -> dict[str, Plugin]:
    plugins, problems = PluginFolder(EXAMPLES, PluginSettings().limit_policy()).scan()
    assert problems == []
    return {plugin.id.name: plugin for plugin in plugins}


def call(plugin: Plugin, payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The plugin's function on `payload` (its progress reports, if any, left out), checked
    against both schemas."""
    Draft202012Validator(plugin.input_schema).validate(payload)
    answer = getattr(module_of(plugin, monkeypatch), plugin.function)(payload)
    if inspect.isgenerator(answer):
        answer = drain(answer)[1]
    Draft202012Validator(plugin.output_schema).validate(answer)
    return answer


def module_of(plugin: Plugin, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The plugin's module, imported from its file (no byte code written into the repository)."""
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    path = plugin.folder / f"{plugin.module}.py"
    spec = importlib.util.spec_from_file_location(f"example_{plugin.module}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drain(generator: Iterator[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    reports = []
    while True:
        try:
            reports.append(next(generator))
        except StopIteration as stop:
            return reports, stop.value


def test_the_three_examples_are_valid_plugins(examples: dict[str, Plugin]) -> None:
    assert sorted(examples) == ["csv-to-json", "json-transform", "text-stats"]
    for plugin in examples.values():
        assert plugin.description
        assert plugin.input_schema["type"] == plugin.output_schema["type"] == "object"
        assert plugin.permissions == frozenset()
        assert plugin.limits.memory_mib <= 256


def test_text_stats_counts_words_lines_and_the_most_frequent(
    examples: dict[str, Plugin], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "The cat and the hat.\nThe state-of-the-art cat didn't sit.\n"
    answer = call(examples["text-stats"], {"text": text, "top": 2}, monkeypatch)
    assert answer == {
        "characters": len(text),
        "words": 10,
        "lines": 2,
        "distinct_words": 7,
        "top_words": [{"word": "the", "count": 3}, {"word": "cat", "count": 2}],
    }
    sensitive = call(examples["text-stats"], {"text": text, "case_sensitive": True}, monkeypatch)
    assert sensitive["top_words"][:2] == [{"word": "The", "count": 2}, {"word": "cat", "count": 2}]
    empty = call(examples["text-stats"], {"text": ""}, monkeypatch)
    assert empty == {"characters": 0, "words": 0, "lines": 0, "distinct_words": 0, "top_words": []}


def test_json_transform_selects_drops_and_renames_nested_fields_with_progress(
    examples: dict[str, Plugin], monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        {"id": n, "customer": {"name": f"c{n}", "email": f"c{n}@example.com"}, "secret": "x"}
        for n in range(30)
    ]
    payload = {
        "records": records,
        "select": ["id", "customer", "missing.field"],
        "drop": ["customer.email"],
        "rename": {"customer.name": "name", "id": "order.id"},
    }
    answer = call(examples["json-transform"], payload, monkeypatch)
    assert answer["count"] == 30
    assert answer["records"][7] == {"customer": {}, "name": "c7", "order": {"id": 7}}
    assert records[7]["customer"] == {"name": "c7", "email": "c7@example.com"}, "input untouched"


def test_json_transform_reports_its_progress_in_order(
    examples: dict[str, Plugin], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = examples["json-transform"]
    transform = module_of(plugin, monkeypatch).transform
    reports, answer = drain(transform({"records": [{"n": n} for n in range(100)]}))
    assert [report["progress"] for report in reports] == [n / 10 for n in range(1, 10)]
    assert reports[0]["message"] == "10 of 100 records"
    assert answer["count"] == 100
    everything = call(plugin, {"records": [{"a": {"b": 1}}]}, monkeypatch)
    assert everything == {"records": [{"a": {"b": 1}}], "count": 1}


def test_csv_to_json_reads_quoted_fields_headers_and_numbers(
    examples: dict[str, Plugin], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = 'name,city,age\nAda,"London, UK",36\n\n"Grace ""Amazing""",Arlington\n'
    answer = call(examples["csv-to-json"], {"csv": text, "numbers": True}, monkeypatch)
    assert answer == {
        "columns": ["name", "city", "age"],
        "rows": [
            {"name": "Ada", "city": "London, UK", "age": 36},
            {"name": 'Grace "Amazing"', "city": "Arlington", "age": None},
        ],
        "count": 2,
    }
    plain = call(
        examples["csv-to-json"],
        {"csv": "1;2.5\n3;4e2\n", "delimiter": ";", "header": False},
        monkeypatch,
    )
    assert plain["columns"] == ["column_1", "column_2"]
    assert plain["rows"][1] == {"column_1": "3", "column_2": "4e2"}, "text unless numbers asked"
    named = call(
        examples["csv-to-json"],
        {"csv": "x,y\n1,2\n", "columns": ["a", "b"], "numbers": True},
        monkeypatch,
    )
    assert named["rows"] == [{"a": 1, "b": 2}]
    huge = call(
        examples["csv-to-json"], {"csv": "n\n" + "9" * 30 + "\n", "numbers": True}, monkeypatch
    )
    assert huge["rows"] == [{"n": "9" * 30}], "beyond 64 bits a number stays text"


def test_csv_to_json_refuses_a_row_wider_than_its_columns(
    examples: dict[str, Plugin], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="row 2 has 3 cells for 2 columns"):
        call(examples["csv-to-json"], {"csv": "a,b\n1,2\n1,2,3\n"}, monkeypatch)


@pytest.mark.parametrize("level", LEVELS, ids=[level.name for level in LEVELS])
async def test_the_examples_run_in_the_real_sandbox_at_every_isolation_level(
    examples: dict[str, Plugin], level: Level
) -> None:
    """What a run's uid may import is what its worker preloaded (the interpreter may lie in a
    home only the service reads): the examples' stdlib, and what that imports on first use."""
    payloads = {
        "text-stats": {"text": "the cat and the hat", "top": 1},
        "json-transform": {"records": [{"a": 1, "b": 2}], "drop": ["b"]},
        "csv-to-json": {"csv": "a,b\n1,2\n", "numbers": True},
    }
    plugins = list(examples.values())
    base = uid_base()
    with work_root() as root:
        async with started(root, plugins, **level.options(base)) as pool:
            for plugin in plugins:
                outcome = await pool.run(plugin, payloads[plugin.id.name], plugin.limits)
                assert outcome.reason == Reason.OK, (plugin.id.name, outcome.detail)
