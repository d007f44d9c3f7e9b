"""The Helm chart without a cluster: lint, rendering, hardening, values schema, settings contract.

The helm binary is the one `make setup` built (the control plane's build script caches it); the
tests skip, naming that command, when it has not been built.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from devtools.binaries import Binaries, BinariesMissingError, cached_helm

from swg_operator.api import OperatorSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "swg-operator"
GENERATED_CRDS = REPO_ROOT / "crds"
RELEASE = "swg"
NAMESPACE = "swg-system"
DIGEST = "sha256:" + "ab" * 32

# Every optional part switched on: the templates must render and lint in this mode too.
EVERYTHING_ON = {
    "metrics.serviceMonitor.enabled": "true",
    "metrics.prometheusRule.enabled": "true",
    "image.digest": DIGEST,
    "networkPolicy.apiServer.cidrs[0]": "192.0.2.10/32",
}


@cache
def helm() -> Path:
    try:
        return cached_helm()
    except BinariesMissingError as err:
        pytest.skip(str(err))


def kube_version() -> str:
    return Binaries.from_cache().kubernetes_version


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(helm()), *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def set_args(values: Mapping[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


@cache
def _render(values: tuple[tuple[str, str], ...], include_crds: bool) -> str:
    extra = ["--include-crds"] if include_crds else []
    return run_helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version(),
        *extra,
        *set_args(dict(values)),
    ).stdout


def render(
    values: Mapping[str, str] | None = None, *, include_crds: bool = False
) -> list[dict[str, Any]]:
    text = _render(tuple(sorted((values or {}).items())), include_crds)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] == "Pod":
            yield doc["metadata"]["name"], doc["spec"]
        elif doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


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
    result = run_helm(
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        kube_version(),
        *set_args({"replicas": "2", "leaderElection.enabled": "false"}),
        check=False,
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


# --- the settings contract with the operator ---------------------------------------------------


def settings_of(docs: list[dict[str, Any]]) -> OperatorSettings:
    config_map = one(docs, "ConfigMap")
    return OperatorSettings.model_validate_json(config_map["data"]["settings.json"])


def test_settings_document_is_a_valid_operator_settings() -> None:
    settings = settings_of(render())
    assert settings.operator_namespace == NAMESPACE
    assert settings.images.proxy.startswith("ghcr.io/swg-operator/proxy:")


def test_every_settings_field_comes_from_a_value() -> None:
    """A field the operator adds to OperatorSettings must get a chart value (or be listed here
    with the reason it has none)."""
    not_from_values = {"testAllowedLoopback": "test-only: the data-plane tier's loopback origin"}
    config_map = one(render(), "ConfigMap")
    rendered = set(json.loads(config_map["data"]["settings.json"]))
    fields = {f.alias or name for name, f in OperatorSettings.model_fields.items()}
    assert rendered | set(not_from_values) == fields


def test_dataplane_values_reach_the_settings() -> None:
    settings = settings_of(
        render(
            {
                "dataplane.images.proxy.tag": "9.9.9",
                "dataplane.images.proxy.digest": DIGEST,
                "dataplane.clusterCIDRs[0]": "10.244.0.0/16",
                "dataplane.proxyPort": "8128",
            }
        )
    )
    assert settings.images.proxy == f"ghcr.io/swg-operator/proxy:9.9.9@{DIGEST}"
    assert settings.cluster_cidrs == ("10.244.0.0/16",)
    assert settings.proxy_port == 8128


def test_antivirus_values_reach_the_settings() -> None:
    assert settings_of(render()).antivirus == OperatorSettings().antivirus  # same defaults
    settings = settings_of(
        render(
            {
                "dataplane.antivirus.signatureSource": "configMap",
                "dataplane.antivirus.signatureConfigMap": "platform-sigs",
                "dataplane.antivirus.freshclam.privateMirrors[0]": "http://mirror.swg-system.svc",
                "dataplane.antivirus.freshclam.checksPerDay": "24",
                "dataplane.antivirus.freshclam.mirrorCIDRs[0]": "10.96.0.0/12",
                "dataplane.antivirus.freshclam.mirrorPods.namespace": "swg-system",
                "dataplane.antivirus.freshclam.mirrorPods.podLabel": "app=clamav-mirror",
                "dataplane.antivirus.freshclam.mirrorPorts[0]": "8080",
            }
        )
    )
    antivirus = settings.antivirus
    assert (antivirus.signature_source, antivirus.signature_config_map) == (
        "configMap",
        "platform-sigs",
    )
    freshclam = antivirus.freshclam
    assert freshclam.private_mirrors == ("http://mirror.swg-system.svc",)
    assert (freshclam.checks_per_day, freshclam.mirror_cidrs) == (24, ("10.96.0.0/12",))
    assert freshclam.mirror_pods is not None
    assert (freshclam.mirror_pods.namespace, freshclam.mirror_pods.pod_label) == (
        "swg-system",
        "app=clamav-mirror",
    )
    assert freshclam.mirror_ports == (8080,)


# --- CRDs --------------------------------------------------------------------------------------


def generated_crds() -> dict[str, dict[str, Any]]:
    crds = {}
    for path in sorted(GENERATED_CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                crds[doc["metadata"]["name"]] = doc
    return crds


def test_rendered_crds_are_the_generated_ones_plus_release_metadata() -> None:
    generated = generated_crds()
    assert generated, "crds/ holds no CustomResourceDefinition"
    rendered = {d["metadata"]["name"]: d for d in by_kind(render(), "CustomResourceDefinition")}
    assert set(rendered) == set(generated)
    for name, crd in rendered.items():
        meta = crd["metadata"]
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep"
        assert meta["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        source = generated[name]
        assert {k: v for k, v in crd.items() if k != "metadata"} == {
            k: v for k, v in source.items() if k != "metadata"
        }, f"{name}: the rendered spec differs from crds/"
        for key, value in source["metadata"].get("labels", {}).items():
            assert meta["labels"][key] == value


def test_crds_can_be_left_to_the_user_or_not_kept() -> None:
    assert not by_kind(render({"crds.install": "false"}), "CustomResourceDefinition")
    crds = by_kind(render({"crds.keep": "false"}), "CustomResourceDefinition")
    assert crds
    for crd in crds:
        assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


def test_leader_election_on_a_lease_and_no_kopf_peering() -> None:
    """kopf peering is gone: instances of equal priority all pause. The Lease is named after
    the release unless leaderElection.leaseName says otherwise."""
    assert not [
        d
        for d in render(include_crds=True)
        if d["kind"] == "CustomResourceDefinition" and "kopf" in d["metadata"]["name"]
    ]
    assert not [d for d in render() if "kopf" in d["apiVersion"]]
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--lease=swg-swg-operator" in container["args"]
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in (
        container["env"]
    )
    named = render({"leaderElection.leaseName": "swg-leader"})
    args = one(named, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--lease=swg-leader" in args
    standalone = render({"leaderElection.enabled": "false"})
    args = one(standalone, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--standalone" in args
    assert not [r for r in one(standalone, "Role")["rules"] if "leases" in r["resources"]]


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


# --- values.schema.json ------------------------------------------------------------------------


BAD_VALUES = [
    ("unknown top-level key", {"replica": "2"}),
    ("no replica", {"replicas": "0"}),
    ("replicas not a number", {"replicas": "two"}),
    ("several replicas, no election", {"replicas": "2", "leaderElection.enabled": "false"}),
    ("unknown nested key", {"image.registry": "example.org"}),
    ("digest that is not sha256", {"image.digest": "sha256:abc"}),
    ("tag with a space", {"image.tag": "1 2"}),
    ("pull policy", {"image.pullPolicy": "Sometimes"}),
    ("health port below 1024", {"health.port": "80"}),
    ("health port not a number", {"health.port": "http"}),
    ("cluster CIDR", {"dataplane.clusterCIDRs[0]": "10.0.0.0"}),
    ("log level", {"logLevel": "verbose"}),
    ("lease name", {"leaderElection.leaseName": "Not_A_Name"}),
    ("API server port", {"networkPolicy.apiServer.ports[0]": "70000"}),
    ("probe period", {"health.livenessProbe.periodSeconds": "0"}),
    ("crds.install not a boolean", {"crds.install": "maybe"}),
    ("alert threshold", {"metrics.prometheusRule.tenantNotReadyMinutes": "0"}),
    ("scrape interval", {"metrics.serviceMonitor.interval": "soon"}),
    ("proxy Service type", {"dataplane.proxyServiceType": "ExternalName"}),
    ("API server CIDR", {"dataplane.apiServerCIDRs[0]": "api.example.com"}),
    ("negative resync", {"resyncSeconds": "-1"}),
    ("dataplane image digest", {"dataplane.images.proxy.digest": "latest"}),
    ("signature source", {"dataplane.antivirus.signatureSource": "internet"}),
    ("mirror with a space", {"dataplane.antivirus.freshclam.databaseMirror": "a b.test"}),
    ("private mirror scheme", {"dataplane.antivirus.freshclam.privateMirrors[0]": "ftp://m.test"}),
    ("checks per day", {"dataplane.antivirus.freshclam.checksPerDay": "0"}),
]


@pytest.mark.parametrize(("what", "values"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_values_schema_rejects(what: str, values: dict[str, str]) -> None:
    result = run_helm(
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        kube_version(),
        *set_args(values),
        check=False,
    )
    assert result.returncode != 0, f"{what}: accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def _leaves(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path


def test_schema_describes_every_value() -> None:
    schema = _schema()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in _leaves(values):
        node = schema
        for i, key in enumerate(path):
            properties = node.get("properties")
            if properties is None:
                # A free-form map (labels, annotations, selectors): its own schema governs it.
                assert node.get("type") == "object"
                assert node.get("additionalProperties") is not False
                break
            assert key in properties, f"values.yaml {'.'.join(path[: i + 1])} is not in the schema"
            node = properties[key]


def test_schema_objects_refuse_unknown_keys() -> None:
    free_form = {
        "global",
        "affinity",
        "annotations",
        "labels",
        "nodeSelector",
        "podAnnotations",
        "podLabels",
        "podSelector",
        "matchLabels",
    }

    def walk(node: Mapping[str, Any], name: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{name} accepts unknown keys"
        for key, child in node.get("properties", {}).items():
            if key not in free_form:
                walk(child, key)
        items = node.get("items")
        if isinstance(items, dict) and name not in ("extraEnv", "tolerations"):
            walk(items, f"{name}[]")

    walk(_schema(), "values")


def test_operator_arguments_are_accepted_by_swg_operator_run() -> None:
    """The Deployment's args parse with the operator's own command line, for every mode."""
    from swg_operator.cli import build_parser

    for values in ({}, {"leaderElection.enabled": "false", "logLevel": "debug"}):
        container = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
        args = build_parser().parse_args(container["args"])
        assert args.command == "run"
        assert str(args.settings) == "/etc/swg-operator/settings.json"
        mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["settings"]
        assert str(args.settings).startswith(mount + "/")
        assert args.verbose is (values.get("logLevel") == "debug")
        assert (args.lease is None) is (values.get("leaderElection.enabled") == "false")
        assert args.standalone is (values.get("leaderElection.enabled") == "false")
