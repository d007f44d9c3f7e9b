"""Data-plane figures reachable by the platform's Prometheus and nothing else, the chart's
PodMonitor and Grafana dashboard, and the dashboard's queries against what the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

import swg_operator.metrics  # noqa: F401  (registers the operator's metrics)
from chart_support import CHART, by_kind, helm_template, one, set_args, settings_of
from chart_support import render as render_chart
from render_support import Endpoint, connection_allowed, minimal_spec, objects_of, render
from swg_logstore.metrics import DataPlaneMetrics
from swg_operator.api import OperatorSettings

DASHBOARD = CHART / "dashboards" / "swg-operator.json"
METRICS_PORT = 9464


def _pods(namespace: str, labels: dict[str, str]) -> Endpoint:
    return Endpoint("10.244.50.5", namespace, labels, {"kubernetes.io/metadata.name": namespace})


def _logstore(settings: OperatorSettings) -> tuple[list[dict[str, Any]], Endpoint]:
    manifests = render("acme", minimal_spec(), settings=settings)
    store = next(
        d for d in objects_of(manifests, "Deployment") if d["metadata"]["name"] == "logstore"
    )
    labels = store["spec"]["template"]["metadata"]["labels"]
    container = store["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == METRICS_PORT
    target = Endpoint("10.244.1.10", manifests.namespace, labels, {})
    return objects_of(manifests, "NetworkPolicy"), target


def test_the_monitoring_namespace_reaches_the_metrics_port_only() -> None:
    policies, store = _logstore(OperatorSettings(monitoring_namespace="monitoring"))
    prometheus = _pods("monitoring", {"app.kubernetes.io/name": "prometheus"})
    assert connection_allowed(policies, prometheus, store, port=METRICS_PORT, protocol="TCP")
    for port in (8080, 5140):  # downloads and ingestion stay closed to it
        assert not connection_allowed(policies, prometheus, store, port=port, protocol="TCP")
    other = _pods("default", {"app.kubernetes.io/name": "prometheus"})
    assert not connection_allowed(policies, other, store, port=METRICS_PORT, protocol="TCP")


def test_without_a_monitoring_namespace_nobody_outside_scrapes() -> None:
    policies, store = _logstore(OperatorSettings())
    prometheus = _pods("monitoring", {})
    assert not connection_allowed(policies, prometheus, store, port=METRICS_PORT, protocol="TCP")


def test_a_bad_monitoring_namespace_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"monitoring_namespace|monitoringNamespace"):
        OperatorSettings(monitoring_namespace="Not A Namespace")


# --- chart -----------------------------------------------------------------------------------

PODMONITOR_ON = {
    "metrics.dataplanePodMonitor.enabled": "true",
    "dataplane.monitoringNamespace": "monitoring",
}


def test_dataplane_podmonitor_and_dashboard_are_opt_in() -> None:
    docs = render_chart()
    assert not by_kind(docs, "PodMonitor")
    assert not [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("dashboard")
    ]


def test_dataplane_podmonitor_scrapes_every_log_store_from_the_monitoring_namespace() -> None:
    docs = render_chart(PODMONITOR_ON)
    monitor = one(docs, "PodMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "logstore"
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    # the setting the tenants' NetworkPolicies admit Prometheus by
    assert settings_of(docs).monitoring_namespace == "monitoring"


def test_podmonitor_without_a_monitoring_namespace_is_refused() -> None:
    args = set_args({"metrics.dataplanePodMonitor.enabled": "true"})
    result = helm_template(*args, check=False)
    assert result.returncode != 0
    assert "dataplane.monitoringNamespace" in result.stderr


def test_dashboard_configmap_for_the_grafana_sidecar() -> None:
    docs = render_chart({"metrics.grafanaDashboard.enabled": "true"})
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["swg-operator.json"]) == json.loads(DASHBOARD.read_text())


# --- the dashboard's queries ------------------------------------------------------------------

FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile",
    "label_values", "topk", "clamp_min", "delta", "deriv",
}  # fmt: skip
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges and
    grouping lists removed; an identifier before `(` is a function, which must be known."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\blabel_values\(([^,)]*),[^)]*\)", r"label_values(\1)", text)  # (m, label)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        if text[match.end() :].lstrip().startswith("("):
            assert word in FUNCTIONS, f"unknown function {word} in {expr}"
        elif word not in KEYWORDS:
            names.add(word)
    return names


def _exported(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "gauge": ("",),
        }[family.type]
        names |= {family.name + s for s in suffixes}
    return names


def exported_metric_names(tmp_path: Path) -> set[str]:
    figures = DataPlaneMetrics("acme", tmp_path, counters=lambda: {"stored_total": 0})
    return _exported(REGISTRY) | _exported(figures.registry)


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    queries = [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]
    queries += [(v["name"], v["query"]) for v in dash["templating"]["list"] if v["type"] == "query"]
    return queries


def test_the_parser_finds_metric_names() -> None:
    expr = 'histogram_quantile(0.99, sum by (le) (rate(a_b_bucket{x="y{}"}[5m]))) / c_total'
    assert metric_names_in(expr) == {"a_b_bucket", "c_total"}
    with pytest.raises(AssertionError, match="unknown function"):
        metric_names_in("nonsense(a)")


def test_every_dashboard_query_uses_exported_metrics(tmp_path: Path) -> None:
    exported = exported_metric_names(tmp_path)
    assert "swg_operator_reconciles_total" in exported
    assert "swg_dataplane_requests_total" in exported
    used: set[str] = set()
    for title, expr in dashboard_queries():
        names = metric_names_in(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= exported, f"{title}: {sorted(names - exported)} not exported"
        used |= names
    for needed in (
        "swg_operator_tenants",
        "swg_operator_reconcile_duration_seconds_bucket",
        "swg_operator_reconcile_errors_total",
        "swg_operator_api_requests_total",
        "swg_operator_purges_pending",
        "swg_dataplane_decisions_total",
        "swg_dataplane_antivirus_verdicts_total",
    ):
        assert needed in used, needed


def test_dashboard_panels_do_not_overlap() -> None:
    dash = json.loads(DASHBOARD.read_text())
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not area & cells, panel["title"]
        cells |= area
