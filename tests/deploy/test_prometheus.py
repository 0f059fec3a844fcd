"""Prometheus's configuration, rules and rule tests, checked by promtool; every alert tested."""

from __future__ import annotations

import re
from typing import Any

import pytest

from deploy.generate.platform import DEPLOYED
from tests.deploy.support import REPO, load, run, tool

RULE_FILES = sorted((REPO / "prometheus/rules").glob("*.yml"))
TEST_FILES = sorted((REPO / "prometheus/tests").glob("*.yml"))


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load(str(path.relative_to(REPO)))["groups"]
        for rule in group["rules"]
    ]


def test_promtool_accepts_the_configuration() -> None:
    result = run(tool("promtool"), "check", "config", str(REPO / "prometheus/prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", *map(str, TEST_FILES), cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_rules_file_is_loaded_and_tested() -> None:
    config = load("prometheus/prometheus.yml")
    assert config["rule_files"] == ["rules/*.yml"]
    tested = {
        (path.parent / rule_file).resolve()
        for path in TEST_FILES
        for rule_file in load(str(path.relative_to(REPO)))["rule_files"]
    }
    assert tested == {path.resolve() for path in RULE_FILES}


def test_every_alert_has_a_severity_and_says_what_and_why() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 15
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert len(alert["annotations"]["description"]) > 40, alert["alert"]


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for case in load(str(path.relative_to(REPO)))["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts - firing == set(), "never shown to fire"
    assert alerts - silent == set(), "never shown to stay silent"


def test_recording_rules_are_named_level_metric_operations() -> None:
    for rule in rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:outrigger_[a-z_]+:[a-z0-9_]+", rule["record"])


@pytest.mark.parametrize(
    "alert",
    [
        "OutriggerServiceDown",
        "OutriggerErrorRatioCritical",
        "OutriggerLatencyHigh",
        "OutriggerNotReady",
        "OutriggerQueueBacklog",
        "OutriggerDeadLettersGrowing",
        "EventStoreSequencerDelayHigh",
        "EventStoreLongTransaction",
        "EventStoreRelayLagging",
        "CacheHitRatioCollapsed",
        "AuditIngestLagging",
        "AuditDeadLetters",
        "AuditCheckpointStale",
        "AuditVerifyFailed",
        "NotificationsSlowConsumerDisconnects",
        "NotificationsDeliveryLatencyHigh",
        "NotificationsFeedInterrupted",
        "NotificationsIngestDeadLetters",
        "NotificationsNoReplicaReady",
        "PluginRunsKilled",
        "PluginSandboxViolations",
        "PluginQueueBacklog",
        "PluginPoolSaturated",
        "PluginSandboxBelowMinimum",
    ],
)
def test_the_alerts_the_platform_promises_exist(alert: str) -> None:
    assert alert in {rule.get("alert") for rule in rules()}


def test_every_deployed_service_is_scraped_with_its_service_label() -> None:
    jobs = {job["job_name"]: job for job in load("prometheus/prometheus.yml")["scrape_configs"]}
    outrigger = jobs["outrigger"]
    assert outrigger["honor_labels"] is True
    targets = {
        config["targets"][0]: config["labels"]["service"] for config in outrigger["static_configs"]
    }
    assert targets == {f"{s.name}:{s.port}": s.name for s in DEPLOYED}
    for job in ("rabbitmq", "rabbitmq-queues", "postgres", "redis", "prometheus"):
        assert job in jobs
