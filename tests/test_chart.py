"""The Helm chart without a cluster: lint, rendering, the operator's Deployment and its hardening,
images, NetworkPolicy and monitoring. Its values (the settings contract, CRDs, leader election,
values.schema.json) are in test_chart_values.py; the helpers every chart test shares (`render`,
`one`, `pod_specs`, ...) in chart_support.py.

The helm binary is the one `make setup` builds (the control plane's build script caches it), built
here when missing.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from chart_support import (
    CHART,
    DIGEST,
    NAMESPACE,
    RELEASE,
    by_kind,
    helm_template,
    kube_version,
    one,
    pod_specs,
    render,
    run_helm,
    set_args,
)

# Every optional part switched on: the templates must render and lint in this mode too.
EVERYTHING_ON = {
    "metrics.serviceMonitor.enabled": "true",
    "metrics.prometheusRule.enabled": "true",
    "image.digest": DIGEST,
    "networkPolicy.apiServer.cidrs[0]": "192.0.2.10/32",
}


# --- lint and render ---------------------------------------------------------------------------


def test_lint_strict_default_values() -> None:
    result = run_helm("lint", "--strict", str(CHART), "--kube-version", kube_version())
    assert "0 chart(s) failed" in result.stdout


def test_lint_strict_with_every_option_on() -> None:
    result = run_helm(
        "lint", "--strict", str(CHART), "--kube-version", kube_version(), *set_args(EVERYTHING_ON)
    )
    assert "0 chart(s) failed" in result.stdout


def test_default_render_has_the_operator_objects() -> None:
    kinds = sorted(d["kind"] for d in render())
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRole",  # the tenant admins' (tenant-reader.yaml)
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "NetworkPolicy",
            "Pod",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )


def test_every_object_is_labelled_and_namespaced_objects_are_in_the_release_namespace() -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    for doc in render(EVERYTHING_ON):
        meta = doc["metadata"]
        labels = meta.get("labels", {})
        assert labels.get("app.kubernetes.io/instance") == RELEASE, meta["name"]
        assert labels.get("app.kubernetes.io/part-of") == "swg-operator", meta["name"]
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in meta, f"{doc['kind']} {meta['name']}"
        else:
            assert meta.get("namespace") == NAMESPACE, f"{doc['kind']} {meta['name']}"


# --- the operator's Deployment -----------------------------------------------------------------


def test_one_replica_replaced_not_rolled() -> None:
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_two_replicas_a_leader_and_a_standby_replaced_at_once_on_two_nodes() -> None:
    """A standby is never ready, so a rollout that waits for new pods to be ready before it
    stops old ones would never end: all are replaced at once and the Lease hands over."""
    docs = render({"replicas": "2"})
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "100%"},
    }
    pod = deployment["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        term["podAffinityTerm"]["labelSelector"]["matchLabels"]
        == (deployment["spec"]["selector"]["matchLabels"])
    )
    assert "--lease=swg-swg-operator" in pod["containers"][0]["args"]
    assert not by_kind(docs, "PodDisruptionBudget"), "a PDB would block draining the leader"
    assert one(docs, "Service")["spec"]["publishNotReadyAddresses"] is True
    custom = render({"replicas": "2", "affinity.nodeAffinity.x": "y"})
    assert one(custom, "Deployment")["spec"]["template"]["spec"]["affinity"] == {
        "nodeAffinity": {"x": "y"}
    }


def test_several_replicas_without_leader_election_are_refused() -> None:
    result = helm_template(
        *set_args({"replicas": "2", "leaderElection.enabled": "false"}), check=False
    )
    assert result.returncode != 0
    assert "replicas" in result.stderr, result.stderr


def test_probes_hit_healthz_on_the_health_port_value() -> None:
    docs = render({"health.port": "9090"})
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # A standby is alive but not ready: /readyz answers 200 only while the pod leads.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "--metrics-address=0.0.0.0:9090" in container["args"]
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["port"] == 9090


def test_every_pod_passes_the_restricted_pod_security_standard() -> None:
    specs = dict(pod_specs(render(EVERYTHING_ON)))
    assert len(specs) == 2  # the operator and the `helm test` pod
    for name, spec in specs.items():
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert not spec.get("hostNetwork")
        assert not spec.get("hostPID")
        assert not spec.get("hostIPC")
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, name
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc.get("privileged") is not True, name
            assert "limits" in container["resources"]
            assert "requests" in container["resources"]


def test_only_the_operator_pod_mounts_a_service_account_token() -> None:
    docs = render()
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    specs = dict(pod_specs(docs))
    operator = one(docs, "Deployment")["metadata"]["name"]
    for name, spec in specs.items():
        assert spec["automountServiceAccountToken"] is (name == operator), name


def test_settings_change_rolls_the_operator_pod() -> None:
    def checksum(values: Mapping[str, str]) -> str:
        deployment = one(render(values), "Deployment")
        return str(
            deployment["spec"]["template"]["metadata"]["annotations"]["swg.dev/settings-checksum"]
        )

    assert checksum({}) != checksum({"dataplane.proxyPort": "8128"})


# --- images ------------------------------------------------------------------------------------


def test_images_default_to_the_app_version_and_pin_a_digest_when_given() -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/swg-operator/operator:{app_version}"
    pinned = one(render({"image.digest": DIGEST, "image.tag": "1.2.3"}), "Deployment")
    image = pinned["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/swg-operator/operator:1.2.3@{DIGEST}"


# --- NetworkPolicy -----------------------------------------------------------------------------


def test_operator_egress_is_the_api_server_and_dns_only() -> None:
    policy = one(render(), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    api, dns = policy["egress"]
    assert {p["port"] for p in api["ports"]} == {443, 6443}
    assert "to" not in api  # nothing to look up without a cluster: any address, API ports only
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    (peer,) = dns["to"]
    assert peer["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
    }
    pinned = one(render({"networkPolicy.apiServer.cidrs[0]": "192.0.2.10/32"}), "NetworkPolicy")
    assert pinned["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "192.0.2.10/32"}}]


def test_operator_ingress_is_the_health_port_from_monitoring_and_the_test_pod() -> None:
    (rule,) = one(render(), "NetworkPolicy")["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    monitoring, test_pod = rule["from"]
    assert monitoring == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert test_pod["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    test_pods = [d for d in render() if d["kind"] == "Pod"]
    assert test_pods[0]["metadata"]["labels"]["app.kubernetes.io/component"] == "test"


# --- monitoring --------------------------------------------------------------------------------


def test_monitoring_objects_are_opt_in() -> None:
    default = render()
    assert not by_kind(default, "ServiceMonitor")
    assert not by_kind(default, "PrometheusRule")
    docs = render(EVERYTHING_ON)
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_every_alert_says_what_to_do() -> None:
    rule = one(render(EVERYTHING_ON), "PrometheusRule")
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]
    assert len(alerts) >= 4
    for alert in alerts:
        annotations = alert["annotations"]
        assert annotations["summary"], alert["alert"]
        assert len(annotations["description"]) > 80, f"{alert['alert']}: it says too little"
        assert annotations["runbook_url"].startswith("https://"), alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical")
