"""Chart conventions platform teams expect: security contexts, pull secrets, common labels,
extra volumes, the log format, per-alert switches with runbook_url, the log-volume alert."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chart_support import REPO_ROOT, run_helm, template
from swg_operator.api import OperatorSettings
from swg_operator.naming import NAMESPACE_PREFIX, log_volume_claim_name

RULES_ON = "metrics.prometheusRule.enabled=true"


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"{kind} *{name_suffix}: {len(found)} rendered"
    return found[0]


def operator_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def alerts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rule = one(docs, "PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_helm_template_needs_no_kube_version() -> None:
    # The chart requires Kubernetes >= 1.30; a helm reporting its default v1.20 fails here.
    assert operator_pod(template())["containers"][0]["name"] == "operator"
    assert "v1.20" not in run_helm("version").stdout


def test_security_contexts_come_from_values() -> None:
    pod = operator_pod(
        template("podSecurityContext.runAsUser=2000", "podSecurityContext.fsGroup=2000")
    )
    assert pod["securityContext"]["runAsUser"] == 2000
    assert pod["securityContext"]["fsGroup"] == 2000
    assert pod["securityContext"]["runAsNonRoot"] is True
    default = operator_pod(template())
    assert default["securityContext"]["runAsUser"] == 10001
    assert default["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize(
    ("pair", "field"),
    [
        ("podSecurityContext.runAsNonRoot=false", "runAsNonRoot"),
        ("securityContext.allowPrivilegeEscalation=true", "allowPrivilegeEscalation"),
    ],
)
def test_the_schema_refuses_a_privileged_security_context(pair: str, field: str) -> None:
    with pytest.raises(AssertionError, match=field):
        template(pair)


def test_common_labels_reach_every_object() -> None:
    docs = template("commonLabels.team=platform", RULES_ON)
    for doc in docs:
        assert doc["metadata"]["labels"]["team"] == "platform", doc["metadata"]["name"]


def test_extra_volumes_are_mounted() -> None:
    pod = operator_pod(
        template(
            "extraVolumes[0].name=ca",
            "extraVolumes[0].configMap.name=corporate-ca",
            "extraVolumeMounts[0].name=ca",
            "extraVolumeMounts[0].mountPath=/etc/ssl/corporate",
        )
    )
    assert {"name": "ca", "configMap": {"name": "corporate-ca"}} in pod["volumes"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "ca", "mountPath": "/etc/ssl/corporate"} in mounts


def test_tenant_pull_secrets_reach_the_operator_settings() -> None:
    docs = template(
        "dataplane.imagePullSecrets[0].name=registry-credentials", "imagePullSecrets[0].name=op"
    )
    settings_map = one(docs, "ConfigMap", "-settings")
    settings = OperatorSettings.model_validate(json.loads(settings_map["data"]["settings.json"]))
    assert settings.images.pull_secrets == ("registry-credentials",)
    assert operator_pod(docs)["imagePullSecrets"] == [{"name": "op"}]
    default = one(template(), "ConfigMap", "-settings")
    assert json.loads(default["data"]["settings.json"])["images"]["pullSecrets"] == []


def test_log_format_is_passed_to_the_operator() -> None:
    assert "--log-format=text" in operator_pod(template())["containers"][0]["args"]
    assert "--log-format=json" in operator_pod(template("logFormat=json"))["containers"][0]["args"]
    with pytest.raises(AssertionError, match="logFormat"):
        template("logFormat=xml")


def test_every_alert_has_a_switch_and_a_runbook_url_to_its_section() -> None:
    rendered = alerts(template(RULES_ON))
    runbooks = (REPO_ROOT / "docs" / "runbooks.md").read_text()
    sections = set(re.findall(r"^## (\w+)$", runbooks, re.M))
    assert set(rendered) == sections
    for name, rule in rendered.items():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("https://"), name
        assert url.endswith(f"/docs/runbooks.md#{name.lower()}"), name
        assert len(rule["annotations"]["description"]) > 80, name
        assert "runbook" not in rule["annotations"], name
        without = alerts(template(RULES_ON, f"metrics.prometheusRule.alerts.{name}=false"))
        assert set(without) == set(rendered) - {name}


def test_the_log_volume_alert_watches_every_tenant_log_claim() -> None:
    rule = alerts(template(RULES_ON, "metrics.prometheusRule.tenantLogVolumeFullPercent=70"))[
        "SwgTenantLogVolumeFilling"
    ]
    expr = rule["expr"]
    assert "kubelet_volume_stats_available_bytes" in expr
    assert "kubelet_volume_stats_capacity_bytes" in expr
    assert f'persistentvolumeclaim="{log_volume_claim_name()}"' in expr
    assert f'namespace=~"{NAMESPACE_PREFIX}.+"' in expr
    assert expr.rstrip().endswith("> 70")
