"""The plugin executor over HTTP, with the in-process test double as its sandbox: listing and
reloading plugins, runs and their endings, bad input, auth, an unavailable pool, audit records
and metrics. What confinement does is the sandbox suites' part (`contract.py`, `test_abuse.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from outrigger.errors import SettingsError
from services.plugin_executor.app import build_app
from tests.plugin_executor.api_support import (
    ADMIN,
    PROBLEM,
    RUN,
    plugin_folder,
    plugin_settings,
    sample,
    served,
)
from tests.plugin_executor.fake_sandbox import InProcessSandbox

if TYPE_CHECKING:
    from pathlib import Path

    from services.plugin_executor.settings import PluginSettings

NAMES = ["csv-to-json", "json-transform", "liar", "text-stats", "tree"]


@pytest.fixture
def settings(tmp_path: Path) -> PluginSettings:
    return plugin_settings(plugin_folder(tmp_path))


async def test_the_list_shows_each_plugin_with_its_schemas_and_limits(
    settings: PluginSettings,
) -> None:
    async with served(settings) as service:
        answer = await service.http.get("/v1/plugins")
    assert answer.status_code == 200
    listed = answer.json()
    assert [plugin["name"] for plugin in listed["plugins"]] == NAMES
    stats = next(plugin for plugin in listed["plugins"] if plugin["name"] == "text-stats")
    assert stats["version"] == "1.0.0"
    assert len(stats["digest"]) == 64
    assert stats["input_schema"]["required"] == ["text"]
    assert stats["output_schema"]["properties"]["top_words"]["type"] == "array"
    assert stats["limits"] == {
        "cpu_seconds": 2.0,
        "memory_mib": 128,
        "wall_seconds": 5.0,
        "output_kib": 256,
    }
    assert stats["permissions"] == []
    liar = next(plugin for plugin in listed["plugins"] if plugin["name"] == "liar")
    assert liar["limits"]["cpu_seconds"] == settings.plugins_default_cpu_seconds
    assert listed["problems"] is None, "problems are for plugins:admin"


async def test_an_admin_sees_the_folders_that_could_not_be_loaded(
    settings: PluginSettings,
) -> None:
    async with served(settings) as service:
        answer = await service.http.get("/v1/plugins", headers=service.as_(RUN, ADMIN))
    [problem] = answer.json()["problems"]
    assert problem["folder"] == "broken"
    assert "name 'Broken!' is not valid" in problem["detail"]


async def test_a_reload_takes_new_changed_and_removed_plugins_and_is_admin_only(
    settings: PluginSettings,
) -> None:
    folder = settings.plugin_dir
    async with served(settings) as service:
        before = {
            p["name"]: p["digest"]
            for p in (await service.http.get("/v1/plugins")).json()["plugins"]
        }
        code = folder / "text-stats" / "text_stats.py"
        code.write_text(code.read_text() + "\n# changed\n")
        (folder / "liar" / "plugin.toml").unlink()
        (folder / "broken" / "plugin.toml").write_text(
            (folder / "text-stats" / "plugin.toml").read_text().replace("text-stats", "fixed")
        )
        (folder / "broken" / "text_stats.py").write_text(code.read_text())
        refused = await service.http.post("/v1/plugins:reload")
        reloaded = await service.http.post(
            "/v1/plugins:reload", headers=service.as_(ADMIN, subject="operator")
        )
        listed = await service.http.get("/v1/plugins")
        [record] = await service.audit.wait(1)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert reloaded.status_code == 200
    after = {p["name"]: p["digest"] for p in reloaded.json()["plugins"]}
    assert sorted(after) == ["csv-to-json", "fixed", "json-transform", "text-stats", "tree"]
    assert after["text-stats"] != before["text-stats"], "a changed file is another digest"
    assert after["csv-to-json"] == before["csv-to-json"]
    assert reloaded.json()["problems"] == [
        {"folder": "liar", "detail": "no plugin.toml in the folder"}
    ]
    assert [p["name"] for p in listed.json()["plugins"]] == sorted(after)
    assert sorted(p.id.name for p in service.sandbox.loaded) == sorted(after)
    assert record.routing_key == "plugin-executor.reload"
    assert record.event.data["actor"] == "operator"
    assert record.event.data["data"]["problems"] == 1


async def test_a_run_answers_the_result_with_its_usage_and_is_audited_and_counted(
    settings: PluginSettings,
) -> None:
    labels = {"plugin": "text-stats", "version": "1.0.0", "reason": "ok"}
    runs = sample("outrigger_plugins_runs_total", **labels)
    walls = sample("outrigger_plugins_run_wall_seconds_count", plugin="text-stats", version="1.0.0")
    rss = sample("outrigger_plugins_run_max_rss_bytes_count", plugin="text-stats", version="1.0.0")
    async with served(settings) as service:
        answer = await service.http.post(
            "/v1/plugins/text-stats/run",
            json={"text": "the cat saw the dog\nthe end", "top": 1},
            headers=service.as_(RUN, subject="alice"),
        )
        [record] = await service.audit.wait(1)
        [loaded] = [p for p in service.sandbox.loaded if p.id.name == "text-stats"]
    assert answer.status_code == 200
    body = answer.json()
    assert body["result"] == {
        "characters": 27,
        "words": 7,
        "lines": 2,
        "distinct_words": 5,
        "top_words": [{"word": "the", "count": 3}],
    }
    assert (body["plugin"], body["version"], body["reason"], body["detail"]) == (
        "text-stats",
        "1.0.0",
        "ok",
        None,
    )
    assert body["digest"] == loaded.id.digest
    assert set(body["usage"]) == {"cpu_s", "max_rss_kib", "wall_s"}
    assert body["usage"]["max_rss_kib"] > 0
    assert record.routing_key == "plugin-executor.run"
    audited = record.event.data
    assert (audited["actor"], audited["resource"], audited["outcome"]) == (
        "alice",
        "text-stats@1.0.0",
        "success",
    )
    assert audited["data"]["reason"] == "ok"
    assert audited["data"]["digest"] == body["digest"]
    assert audited["data"]["usage"] == body["usage"]
    assert sample("outrigger_plugins_runs_total", **labels) == runs + 1
    assert (
        sample("outrigger_plugins_run_wall_seconds_count", plugin="text-stats", version="1.0.0")
        == walls + 1
    )
    assert (
        sample("outrigger_plugins_run_max_rss_bytes_count", plugin="text-stats", version="1.0.0")
        == rss + 1
    )


async def test_a_plugin_that_yields_progress_answers_its_returned_result(
    settings: PluginSettings,
) -> None:
    records = [{"id": n, "customer": {"name": f"c{n}", "vip": n % 2 == 0}} for n in range(20)]
    spec = {"select": ["id", "customer.name"], "rename": {"customer.name": "name"}}
    async with served(settings) as service:
        answer = await service.http.post(
            "/v1/plugins/json-transform/run", json={"records": records, **spec}
        )
    assert answer.status_code == 200
    assert answer.json()["reason"] == "ok"
    assert answer.json()["result"]["records"][:2] == [
        {"id": 0, "customer": {}, "name": "c0"},
        {"id": 1, "customer": {}, "name": "c1"},
    ]
    assert service.sandbox.reported, "the progress reports reached the sandbox's caller"


@pytest.mark.parametrize(
    ("plugin", "body", "field", "detail"),
    [
        ("text-stats", {"text": 5}, "text", "text: 5 is not of type 'string'"),
        ("text-stats", {}, "text", "text: is required"),
        ("text-stats", {"text": "x", "top": 101}, "top", "top: 101 is greater than the maximum"),
        ("text-stats", {"text": "x", "colour": 1}, "", "the input: Additional properties"),
        ("json-transform", {"records": [{}, 5]}, "records.1", "records.1: 5 is not of type"),
        ("json-transform", {"records": [], "select": ["a..b"]}, "select.0", "select.0: 'a..b'"),
    ],
)
async def test_input_that_breaks_the_schema_is_a_422_naming_the_path_and_runs_nothing(
    settings: PluginSettings, plugin: str, body: dict[str, Any], field: str, detail: str
) -> None:
    labels = {"plugin": plugin, "version": "1.0.0", "reason": "invalid_input"}
    before = sample("outrigger_plugins_runs_total", **labels)
    async with served(settings) as service:
        answer = await service.http.post(f"/v1/plugins/{plugin}/run", json=body)
        runs = service.sandbox.runs
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["detail"].startswith(detail), problem["detail"]
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["location"] == "body"
    assert problem["plugin"] == f"{plugin}@1.0.0"
    assert runs == []
    assert sample("outrigger_plugins_runs_total", **labels) == before + 1


async def test_an_input_that_is_not_an_object_is_a_422(settings: PluginSettings) -> None:
    async with served(settings) as service:
        answer = await service.http.post("/v1/plugins/text-stats/run", json=["text"])
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM


async def test_a_result_that_breaks_the_output_schema_ends_invalid_output(
    settings: PluginSettings,
) -> None:
    async with served(settings) as service:
        answer = await service.http.post("/v1/plugins/liar/run", json={})
        [record] = await service.audit.wait(1)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["reason"], body["result"]) == ("invalid_output", None)
    assert body["detail"] == (
        "the result breaks the output schema at count: 'seven' is not of type 'integer'"
    )
    assert record.event.data["outcome"] == "failure"
    assert record.event.data["data"]["reason"] == "invalid_output"


async def test_large_documents_are_checked_as_small_ones_are(settings: PluginSettings) -> None:
    """Past `INLINE_VALUES` values a result is checked in a thread: same answers."""
    records: list[Any] = [{"id": n} for n in range(100)]
    records[70] = 5
    async with served(settings) as service:
        bad_input = await service.http.post(
            "/v1/plugins/json-transform/run", json={"records": records}
        )
        large_result = await service.http.post("/v1/plugins/tree/run", json={"depth": 100})
    assert bad_input.status_code == 422
    assert bad_input.json()["errors"][0]["field"] == "records.70"
    assert large_result.json()["reason"] == "ok"
    assert str(large_result.json()["result"]).count("child") == 100


async def test_documents_too_deep_to_check_are_a_422_or_invalid_output_never_a_500(
    settings: PluginSettings,
) -> None:
    deep: dict[str, Any] = {}
    for _ in range(400):
        deep = {"child": deep}
    async with served(settings) as service:
        too_deep_input = await service.http.post("/v1/plugins/tree/run", json=deep)
        too_deep_result = await service.http.post("/v1/plugins/tree/run", json={"depth": 400})
        shallow = await service.http.post("/v1/plugins/tree/run", json={"depth": 3})
    assert too_deep_input.status_code == 422
    assert (
        too_deep_input.json()["detail"] == "the input of tree@0.1.0 is nested too deeply to check"
    )
    assert too_deep_result.status_code == 200
    assert too_deep_result.json()["reason"] == "invalid_output"
    assert "nested too deeply" in too_deep_result.json()["detail"]
    assert shallow.json()["result"] == {"child": {"child": {"child": {}}}}


async def test_a_plugin_that_raises_is_a_200_with_reason_error(settings: PluginSettings) -> None:
    async with served(settings) as service:
        answer = await service.http.post(
            "/v1/plugins/csv-to-json/run", json={"csv": "a,b\n1,2,3\n"}
        )
    assert answer.status_code == 200
    assert answer.json()["reason"] == "error"
    assert answer.json()["result"] is None
    assert "row 1 has 3 cells for 2 columns" in answer.json()["detail"]


async def test_an_unknown_plugin_is_a_404(settings: PluginSettings) -> None:
    async with served(settings) as service:
        answer = await service.http.post("/v1/plugins/nope/run", json={})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM
    assert "no plugin named 'nope'" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "scopes", "status"),
    [
        ("GET", "/v1/plugins", None, 401),
        ("GET", "/v1/plugins", (ADMIN,), 403),
        ("POST", "/v1/plugins:reload", None, 401),
        ("POST", "/v1/plugins:reload", (RUN,), 403),
        ("POST", "/v1/plugins/text-stats/run", None, 401),
        ("POST", "/v1/plugins/text-stats/run", (ADMIN,), 403),
    ],
)
async def test_each_route_needs_a_token_with_its_scope(
    settings: PluginSettings, method: str, path: str, scopes: tuple[str, ...] | None, status: int
) -> None:
    async with served(settings) as service, httpx.AsyncClient(base_url=service.url) as client:
        headers = service.as_(*scopes) if scopes else {}
        answer = await client.request(method, path, json={"text": "x"}, headers=headers)
        runs = service.sandbox.runs
    assert answer.status_code == status
    assert answer.headers["content-type"] == PROBLEM
    assert runs == []


async def test_an_unavailable_sandbox_is_a_503_with_retry_after(settings: PluginSettings) -> None:
    labels = {"plugin": "text-stats", "version": "1.0.0", "reason": "ok"}
    before = sample("outrigger_plugins_runs_total", **labels)
    async with served(settings) as service:
        service.sandbox.available = False
        answer = await service.http.post("/v1/plugins/text-stats/run", json={"text": "x"})
        audited = list(service.audit.records)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["retry-after"] == "1"
    assert audited == []
    assert sample("outrigger_plugins_runs_total", **labels) == before


async def test_readiness_shows_the_sandbox_layers_and_the_gauge_follows(
    settings: PluginSettings,
) -> None:
    async with served(settings) as service:
        ready = await service.http.get("/readyz")
    assert ready.status_code == 200
    layers = ready.json()["details"]["sandbox"]
    assert layers["active"] == ["rlimits", "session"]
    assert layers["required"] == ["rlimits", "seccomp", "session"]
    assert "seccomp" in layers["missing"]
    assert sample("outrigger_plugins_sandbox_feature", feature="session") == 1
    assert sample("outrigger_plugins_sandbox_feature", feature="landlock") == 0


async def test_a_sandbox_that_refuses_to_start_stops_the_service_with_one_line(
    settings: PluginSettings,
) -> None:
    sandbox = InProcessSandbox(refuse_start="seccomp is required and this host lacks it")
    app = build_app(settings, sandbox=sandbox)
    with pytest.raises(SettingsError) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert str(refused.value) == (
        "the plugin sandbox cannot start: seccomp is required and this host lacks it"
    )
    assert app.state.startup_error == str(refused.value)
    assert sandbox.closed, "what started of the pool is stopped"


async def test_the_plugin_folder_missing_is_a_problem_not_a_failure(tmp_path: Path) -> None:
    settings = plugin_settings(tmp_path / "nowhere")
    async with served(settings) as service:
        answer = await service.http.get("/v1/plugins", headers=service.as_(RUN, ADMIN))
    assert answer.json()["plugins"] == []
    [problem] = answer.json()["problems"]
    assert "the plugin folder cannot be read" in problem["detail"]
