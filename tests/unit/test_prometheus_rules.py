"""deploy/prometheus and deploy/grafana checked by promtool and for internal consistency.

``make test`` installs Debian's prometheus package (promtool included) when it is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stream.dashboards import all_panel_targets, load_dashboards

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"


def promtool(*args: str) -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is missing: run `make prometheus` (or `make test`, which does)")
    done = subprocess.run([exe, *args], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_accepts_the_config_and_the_rules() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 10 rules found" in promtool("check", "rules", "alerts.yml")


def test_every_alert_fires_on_its_incident_and_stays_quiet_when_healthy() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")
    tested = {
        case["alertname"]
        for test in yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert {
        "RecstreamWorkerDown",
        "RecstreamConsumerLagGrowing",
        "RecstreamDeadLetterRate",
        "RecstreamLatencySLOFastBurn",
        "RecstreamQdrantErrors",
        "RecstreamQdrantLagging",
    } <= tested


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for group in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_dashboards_use_the_provisioned_datasource_and_are_complete() -> None:
    datasource = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "recstream.yml").read_text()
    )["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]
    uids = set()
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        raw = json.loads(path.read_text())
        uids.add(raw["uid"])
        for panel in raw["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
            assert panel["description"] and panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"]
    assert len(uids) == len(load_dashboards()) == 3
    names = {name for name, _, _ in all_panel_targets()}
    assert names == {"overview", "recommendations", "dependencies"}


def test_no_panel_overlaps_another() -> None:
    for dashboard in load_dashboards():
        cells: set[tuple[int, int]] = set()
        for panel in dashboard.panels:
            x, y, w, h = panel.grid
            assert x + w <= 24, panel.title
            mine = {(cx, cy) for cx in range(x, x + w) for cy in range(y, y + h)}
            assert not (cells & mine), panel.title
            cells |= mine


def test_legends_follow_grafanas_format() -> None:
    from stream.dashboards import legend

    labels = {"topic": "clicks", "partition": "3", "__name__": "x"}
    assert legend("{{topic}}/{{partition}}", labels) == "clicks/3"
    assert legend("__auto", labels) == "partition=3,topic=clicks"
    assert legend("", {}) == "value"
