"""Monitoring: alert rules, scrape config and dashboard are valid and talk about real metrics.

- `promtool check rules` on the PrometheusRule's groups and `promtool test rules` on
  alerts.test.yaml (each alert fires when it should, nothing else fires);
- `promtool check config` on the plain scrape config; Debian's promtool is built without
  Kubernetes service discovery, so `kubernetes_sd_configs` is swapped for a static target
  for that check and checked structurally instead;
- every metric name in the alerts and the dashboard is one the shard or the aggregator
  exports (read from their telemetry classes), every dashboard query parses as PromQL;
- the job names agree between the ServiceMonitors/ScrapeConfig, the plain config and the alerts;
- the users' metrics are scraped in partitions through the aggregator Service, alike in both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from aggregator.telemetry import AggregatorMetrics
from shard.telemetry import ShardMetrics
from tests.manifests.conftest import MANIFESTS, Rendered, selects

RULES = MANIFESTS / "components" / "monitoring" / "prometheusrule.yaml"
SCRAPE_CONFIG = MANIFESTS / "prometheus" / "scrape-config.yaml"
DASHBOARD = MANIFESTS / "components" / "grafana-dashboard" / "panopticon.json"
ALERT_TESTS = Path(__file__).with_name("alerts.test.yaml")
JOBS = {"panopticon", "panopticon-aggregator", "panopticon-shard"}
DASHBOARD_VARIABLES = {"$__rate_interval": "5m", "$namespace": "panopticon"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("no promtool (scripts/setup installs Debian's prometheus package)")
    return found


def run_promtool(promtool: str, *args: str | Path) -> None:
    proc = subprocess.run(
        [promtool, *map(str, args)], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{proc.stdout}{proc.stderr}"


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["spec"]["groups"]
    return groups


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def without_variables(expr: str) -> str:
    for variable, value in DASHBOARD_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def test_the_alert_rules_pass_promtool_check_rules(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups()}))
    run_promtool(promtool, "check", "rules", path)


def test_each_alert_fires_when_it_should_and_nothing_else_does(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    run_promtool(promtool, "test", "rules", tmp_path / ALERT_TESTS.name)
    tested = set(re.findall(r'alertname="(\w+)"', ALERT_TESTS.read_text()))
    alerts = {r["alert"] for g in rule_groups() for r in g["rules"] if "alert" in r}
    assert alerts == tested, f"alerts without a firing test: {alerts - tested}"


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    rules = [{"record": f"dashboard:query_{i}", "expr": without_variables(q)} for i, q in enumerate(queries)]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool(promtool, "check", "rules", path)


def test_the_plain_scrape_config_passes_promtool_check_config(promtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    assert {job["job_name"] for job in config["scrape_configs"]} == JOBS
    for job in config["scrape_configs"]:
        if job["job_name"] == "panopticon":
            check_partitions(job["static_configs"], job["params"], job["relabel_configs"])
            continue
        (sd,) = job.pop("kubernetes_sd_configs")
        assert sd == {"role": "endpointslice", "namespaces": {"names": ["panopticon"]}}, job["job_name"]
        keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
        assert keep[0]["source_labels"][0] == "__meta_kubernetes_service_name"
        job["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
    assert next(j for j in config["scrape_configs"] if j["job_name"] == "panopticon")["honor_labels"] is True
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    run_promtool(promtool, "check", "config", path)


def check_partitions(
    static: list[dict[str, Any]], params: dict[str, list[str]], relabel: list[dict[str, Any]]
) -> None:
    """k targets on the aggregator Service, partitions 0..k-1, `of` = k, the label into the URL."""
    (of,) = params["of"]
    assert [s["targets"] for s in static] == [["panopticon-aggregator.panopticon.svc:8080"]] * int(of)
    assert [s["labels"]["partition"] for s in static] == [str(i) for i in range(int(of))]
    assert any(
        r.get("targetLabel", r.get("target_label")) == "__param_partition"
        and r.get("sourceLabels", r.get("source_labels")) == ["partition"]
        for r in relabel
    )


def exported_series_names() -> set[str]:
    """Every sample name the shard and the aggregator can export, from their real registries."""
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    names = set()
    for registry in (ShardMetrics().registry, AggregatorMetrics(CollectorRegistry()).registry):
        for family in registry.collect():
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


def test_alerts_and_dashboard_use_only_metrics_that_exist() -> None:
    exported = exported_series_names()
    exprs = [r["expr"] for g in rule_groups() for r in g["rules"]] + dashboard_queries()
    used = {name for expr in exprs for name in re.findall(r"\bpanopticon_[a-z0-9_]+\b", expr)}
    assert used, exprs
    assert used <= exported, f"not exported by shard/ or aggregator/: {sorted(used - exported)}"


def test_alerts_and_dashboard_use_only_the_documented_jobs() -> None:
    exprs = [r["expr"] for g in rule_groups() for r in g["rules"]] + dashboard_queries()
    jobs = set()
    for expr in exprs:
        for match in re.findall(r'job=~?"([^"]+)"', expr):
            jobs.update(match.split("|"))
    assert jobs == JOBS


def test_the_monitoring_objects_produce_the_same_jobs_as_the_plain_config(
    rendered: dict[str, Rendered],
) -> None:
    r = rendered["overlays/large"]
    services = {s["metadata"]["name"]: s for s in r.of_kind("Service")}
    jobs = set()
    for monitor in r.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]
        selected = [name for name, s in services.items() if selects(selector, s["metadata"]["labels"])]
        for endpoint in monitor["spec"]["endpoints"]:
            relabeled = [
                x["replacement"] for x in endpoint.get("relabelings", []) if x.get("targetLabel") == "job"
            ]
            for name in selected:
                if endpoint["port"] in [p["name"] for p in services[name]["spec"]["ports"]]:
                    jobs.add(relabeled[-1] if relabeled else name)
        assert all(e["port"] != "http-metrics" for e in monitor["spec"]["endpoints"]), "scraped per pod"
    (scrape,) = r.of_kind("ScrapeConfig")
    spec = scrape["spec"]
    assert spec["honorLabels"] is True
    check_partitions(spec["staticConfigs"], spec["params"], spec["relabelings"])
    service = services["panopticon-aggregator"]
    host, port = spec["staticConfigs"][0]["targets"][0].rsplit(":", 1)
    assert host == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert int(port) in [p["port"] for p in service["spec"]["ports"] if p["name"] == "http-metrics"]
    jobs.update(s["labels"]["job"] for s in spec["staticConfigs"])
    assert jobs == JOBS


def test_the_dashboard_is_a_configmap_grafanas_sidecar_loads(rendered: dict[str, Rendered]) -> None:
    configmap = rendered["overlays/large"].get("ConfigMap", "panopticon-grafana-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = configmap["data"].values()
    dashboard = json.loads(content)
    assert dashboard["uid"] and dashboard["title"] == "Panopticon"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
